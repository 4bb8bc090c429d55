//! Conformance: the examples of Terraform's documentation for each function
//! (expression → the value Terraform shows, as JSON), and error cases.

use super::eval;

/// Terraform's documented examples, with a few more for edges it documents
/// in words.
const EXAMPLES: &[(&str, &str)] = &[
    // Strings.
    (r#"trimspace("  hello\n\n")"#, r#""hello""#),
    (r#"trim("?!hello?!", "!?")"#, r#""hello""#),
    (r#"trim("foobar", "far")"#, r#""oob""#),
    (r#"trim("   hello! world.!  ", "! ")"#, r#""hello! world.""#),
    (r#"trimprefix("helloworld", "hello")"#, r#""world""#),
    (r#"trimprefix("helloworld", "cat")"#, r#""helloworld""#),
    (r#"trimsuffix("helloworld", "world")"#, r#""hello""#),
    (r#"trimsuffix("helloworld", "cat")"#, r#""helloworld""#),
    (r#"startswith("hello world", "hello")"#, "true"),
    (r#"startswith("hello world", "world")"#, "false"),
    (r#"endswith("hello world", "world")"#, "true"),
    (r#"endswith("hello world", "hello")"#, "false"),
    (r#"strcontains("hello world", "wor")"#, "true"),
    (r#"strcontains("hello world", "wod")"#, "false"),
    (r#"substr("hello world", 1, 4)"#, r#""ello""#),
    (r#"substr("🤔🤷", 0, 1)"#, r#""🤔""#),
    (r#"substr("hello world", -5, -1)"#, r#""world""#),
    (r#"substr("hello world", 6, 10)"#, r#""world""#),
    (r#"substr("hello", 9, 2)"#, r#""""#),
    (r#"title("hello world")"#, r#""Hello World""#),
    (r#"title("o'neil-smith x_y")"#, r#""O'Neil-Smith X_y""#),
    (
        r#"regex("[a-z]+", "53453453.345345aaabbbccc23454")"#,
        r#""aaabbbccc""#,
    ),
    (
        r#"regex("(\\d\\d\\d\\d)-(\\d\\d)-(\\d\\d)", "2019-02-01")"#,
        r#"["2019","02","01"]"#,
    ),
    (
        r#"regex("^(?:(?P<scheme>[^:/?#]+):)?(?://(?P<authority>[^/?#]*))?", "https://terraform.io/docs/")"#,
        r#"{"authority":"terraform.io","scheme":"https"}"#,
    ),
    (r#"regex("(a)|(b)", "b")"#, r#"[null,"b"]"#),
    (r#"regex("\\d+", "x٣12")"#, r#""12""#),
    (r#"regex("\\Q1.5\\E", "v1.5")"#, r#""1.5""#),
    (
        r#"regexall("[a-z]+", "1234abcd5678efgh9")"#,
        r#"["abcd","efgh"]"#,
    ),
    (r#"length(regexall("[a-z]+", "1234abcd5678efgh9"))"#, "2"),
    (r#"length(regexall("[a-z]+", "123456789")) > 0"#, "false"),
    (
        r#"regexall("(\\w+)=(\\d+)", "a=1 b=2")"#,
        r#"[["a","1"],["b","2"]]"#,
    ),
    (r#"replace("1 + 2 + 3", "+", "-")"#, r#""1 - 2 - 3""#),
    (
        r#"replace("hello world", "/w.*d/", "everybody")"#,
        r#""hello everybody""#,
    ),
    (r#"replace("a-b", "/(\\w)-(\\w)/", "$2-$1")"#, r#""b-a""#),
    (
        r#"formatlist("Hello, %s!", ["Valentina", "Ander", "Olivia", "Sam"])"#,
        r#"["Hello, Valentina!","Hello, Ander!","Hello, Olivia!","Hello, Sam!"]"#,
    ),
    (
        r#"formatlist("%s, %s!", "Salutations", ["Valentina", "Ander", "Olivia", "Sam"])"#,
        r#"["Salutations, Valentina!","Salutations, Ander!","Salutations, Olivia!","Salutations, Sam!"]"#,
    ),
    (
        r#"formatlist("%s=%d", ["a", "b"], [1, 2])"#,
        r#"["a=1","b=2"]"#,
    ),
    (r#"formatlist("x")"#, r#"["x"]"#),
    // format: Terraform's documented examples, then go-cty's (the
    // implementation Terraform calls).
    (r#"format("Hello, %s!", "Ander")"#, r#""Hello, Ander!""#),
    (
        r#"format("There are %d lights", 4)"#,
        r#""There are 4 lights""#,
    ),
    (r#"format("100%% successful")"#, r#""100% successful""#),
    (
        r#"format("string %[2]v", true, "hello")"#,
        r#""string hello""#,
    ),
    (r#"format("string %#v", "hello")"#, r#""string \"hello\"""#),
    (r#"format("number %v", 2)"#, r#""number 2""#),
    (r#"format("number %#v", 2)"#, r#""number 2""#),
    (r#"format("bool %v", true)"#, r#""bool true""#),
    (r#"format("object %v", {})"#, r#""object {}""#),
    (r#"format("tuple %v", [])"#, r#""tuple []""#),
    (r#"format("%%%v", false)"#, r#""%false""#),
    (r#"format("%v", null)"#, r#""null""#),
    (
        r#"format("%v", {b = [1, "x"], a = null})"#,
        r#""{\"a\":null,\"b\":[1,\"x\"]}""#,
    ),
    (
        r#"format("Hello, %[2]s!", "Stephen", "Ermintrude")"#,
        r#""Hello, Ermintrude!""#,
    ),
    (
        r#"format("Hello, %q!", "Ermintrude")"#,
        r#""Hello, \"Ermintrude\"!""#,
    ),
    (
        r#"format("This statement is %s", false)"#,
        r#""This statement is false""#,
    ),
    (
        r#"format("This statement is %q", false)"#,
        r#""This statement is \"false\"""#,
    ),
    (r#"format("%10s", "hello")"#, r#""     hello""#),
    (r#"format("%-10s", "hello")"#, r#""hello     ""#),
    (r#"format("%-5s|", "ab")"#, r#""ab   |""#),
    (r#"format("%.2s", "hello")"#, r#""he""#),
    (r#"format("%.2q", "hello")"#, r#""\"he\"""#),
    (r#"format("%.5s", "日本語日本語")"#, r#""日本語日本""#),
    (r#"format("%.10s", "hello")"#, r#""hello""#),
    (r#"format("%4.2s", "hello")"#, r#""  he""#),
    (r#"format("%6.2q", "hello")"#, r#""  \"he\"""#),
    (r#"format("%-4.2s", "hello")"#, r#""he  ""#),
    (r#"format("%q", "Hello\nWorld")"#, r#""\"Hello\\nWorld\"""#),
    (r#"format("%q", "<&>")"#, r#""\"\\u003c\\u0026\\u003e\"""#),
    (
        r#"format("This statement is %t", false)"#,
        r#""This statement is false""#,
    ),
    (
        r#"format("This statement is %[2]t", true, false)"#,
        r#""This statement is false""#,
    ),
    (
        r#"format("This statement is %t", "false")"#,
        r#""This statement is false""#,
    ),
    (r#"format("%d green bottles", 10)"#, r#""10 green bottles""#),
    (r#"format("%[2]d things", 1, 10)"#, r#""10 things""#),
    (r#"format("%+d", 10)"#, r#""+10""#),
    (r#"format("% d", 10)"#, r#"" 10""#),
    (r#"format("%5d|", 10)"#, r#""   10|""#),
    (r#"format("%-5d|", 10)"#, r#""10   |""#),
    (r#"format("%05d", 42)"#, r#""00042""#),
    (r#"format("%05d", -42)"#, r#""-0042""#),
    (r#"format("%.3d", 7)"#, r#""007""#),
    (r#"format("%b", 5)"#, r#""101""#),
    (r#"format("%o", 9)"#, r#""11""#),
    (r#"format("%x", 254)"#, r#""fe""#),
    (r#"format("%X", 254)"#, r#""FE""#),
    (r#"format("%#x", 255)"#, r#""0xff""#),
    (r#"format("%x", -255)"#, r#""-ff""#),
    (r#"format("%d", "9101")"#, r#""9101""#),
    (r#"format("%f things", 10)"#, r#""10.000000 things""#),
    (r#"format("%[2]f things", 1, 10)"#, r#""10.000000 things""#),
    (r#"format("%+f", 10)"#, r#""+10.000000""#),
    (r#"format("% f", 10)"#, r#"" 10.000000""#),
    (r#"format("%+f", -10)"#, r#""-10.000000""#),
    (
        r#"format("%.4f", "1.00000000000000000000000000000000000001")"#,
        r#""1.0000""#,
    ),
    (r#"format("%.1f", "1.06")"#, r#""1.1""#),
    (r#"format("%.2f", 3.14159)"#, r#""3.14""#),
    (r#"format("%9.2f|", 3.14159)"#, r#""     3.14|""#),
    (r#"format("%09.2f", -3.14159)"#, r#""-00003.14""#),
    (r#"format("%e things", 1000)"#, r#""1.000000e+03 things""#),
    (r#"format("%E things", 1000)"#, r#""1.000000E+03 things""#),
    (r#"format("%.2e", 123456)"#, r#""1.23e+05""#),
    (r#"format("%g things", 1000)"#, r#""1000 things""#),
    (r#"format("%G things", 1000)"#, r#""1000 things""#),
    (
        r#"format("%g things", "0.00000000000000000000001")"#,
        r#""1e-23 things""#,
    ),
    (
        r#"format("%G things", "0.00000000000000000000001")"#,
        r#""1E-23 things""#,
    ),
    (r#"format("%g", 1234567)"#, r#""1.234567e+06""#),
    (r#"format("%v", 1.5)"#, r#""1.5""#),
    (r#"format("%.3g", 3.14159)"#, r#""3.14""#),
    (r#"formatlist("%s", "hello")"#, r#"["hello"]"#),
    (
        r#"formatlist("%s %s", ["hello", "goodbye"], "world")"#,
        r#"["hello world","goodbye world"]"#,
    ),
    (r#"formatlist("%v", [])"#, "[]"),
    (r#"formatlist("%v", null)"#, r#"["null"]"#),
    (r#"formatlist("%05.1f", [1, 2.25])"#, r#"["001.0","002.2"]"#),
    // try and can (Terraform's examples, with local.foo = { bar = "baz" }).
    (r#"try({ bar = "baz" }.bar, "fallback")"#, r#""baz""#),
    (r#"try({ bar = "baz" }.boop, "fallback")"#, r#""fallback""#),
    (r#"can({ bar = "baz" }.bar)"#, "true"),
    (r#"can({ bar = "baz" }.boop)"#, "false"),
    (r#"try([tostring("a")], tolist("a"))"#, r#"["a"]"#),
    (r#"try([tostring(["a"])], tolist(["a"]))"#, r#"["a"]"#),
    ("try(1 / 0, 5)", "5"),
    ("can(1 / 0)", "false"),
    ("[for x in [1, 0] : try(10 / x, -1)]", "[10,-1]"),
    (
        r#"[for k, v in { a = 1, b = "x" } : try(v + 1, k)]"#,
        r#"[2,"b"]"#,
    ),
    (
        r#""%{ for x in [1, 0] }${try(10 / x, "-")},%{ endfor }""#,
        r#""10,-,""#,
    ),
    ("try(try(1 / 0, 2 / 0), 3)", "3"),
    // Operators, as Terraform's: a string holding a number is a number,
    // whole numbers stay whole, `/` gives a fraction, `%` keeps the
    // dividend's sign; only the branch taken is evaluated.
    ("1 + 2 * 3", "7"),
    (r#""1" + 1"#, "2"),
    (r#""9101" * 1"#, "9101"),
    ("10 / 4", "2.5"),
    ("10 / 5", "2"),
    ("-5 % 3", "-2"),
    ("5.5 % 2", "1.5"),
    ("-(-9223372036854775808)", "9223372036854775808"),
    ("18446744073709551615 - 1", "18446744073709551614"),
    (r#""10" < 9"#, "false"),
    ("2 >= 2", "true"),
    ("0.1 + 0.2 > 0.3", "true"),
    ("true ? 1 : 1 / 0", "1"),
    ("false ? 1 / 0 : 2", "2"),
    // Collections.
    ("range(3)", "[0,1,2]"),
    ("range(1, 4)", "[1,2,3]"),
    ("range(1, 8, 2)", "[1,3,5,7]"),
    ("range(1, 4, 0.5)", "[1,1.5,2,2.5,3,3.5]"),
    ("range(4, 1)", "[4,3,2]"),
    ("range(10, 5, -2)", "[10,8,6]"),
    ("range(0)", "[]"),
    ("range(-3)", "[0,-1,-2]"),
    (r#"flatten([["a", "b"], [], ["c"]])"#, r#"["a","b","c"]"#),
    (r#"flatten([[["a", "b"], []], ["c"]])"#, r#"["a","b","c"]"#),
    (r#"sort(["e", "d", "a", "x"])"#, r#"["a","d","e","x"]"#),
    ("sort([10, 9, 1])", r#"["1","10","9"]"#),
    (
        r#"distinct(["a", "b", "a", "c", "d", "b"])"#,
        r#"["a","b","c","d"]"#,
    ),
    ("reverse([1, 2, 3])", "[3,2,1]"),
    (r#"zipmap(["a", "b"], [1, 2])"#, r#"{"a":1,"b":2}"#),
    (r#"zipmap(["b", "a", "b"], [1, 2, 3])"#, r#"{"a":2,"b":3}"#),
    (r#"slice(["a", "b", "c", "d"], 1, 3)"#, r#"["b","c"]"#),
    (r#"slice(["a"], 1, 1)"#, "[]"),
    (r#"element(["a", "b", "c"], 1)"#, r#""b""#),
    (r#"element(["a", "b", "c"], 3)"#, r#""a""#),
    (
        r#"element(["a", "b", "c"], length(["a", "b", "c"])-1)"#,
        r#""c""#,
    ),
    (r#"index(["a", "b", "c"], "b")"#, "1"),
    (r#"compact(["a", "", "b", null, "c"])"#, r#"["a","b","c"]"#),
    (
        r#"chunklist(["a", "b", "c", "d", "e"], 2)"#,
        r#"[["a","b"],["c","d"],["e"]]"#,
    ),
    (
        r#"chunklist(["a", "b", "c", "d", "e"], 1)"#,
        r#"[["a"],["b"],["c"],["d"],["e"]]"#,
    ),
    (r#"chunklist(["a", "b"], 0)"#, r#"[["a","b"]]"#),
    ("chunklist([], 2)", "[]"),
    ("one([])", "null"),
    (r#"one(["hello"])"#, r#""hello""#),
    (r#"alltrue(["true", true])"#, "true"),
    ("alltrue([true, false])", "false"),
    ("alltrue([])", "true"),
    (r#"anytrue(["true"])"#, "true"),
    ("anytrue([true])", "true"),
    ("anytrue([true, false])", "true"),
    ("anytrue([])", "false"),
    // Numbers.
    ("sum([10, 13, 6, 2])", "31"),
    ("sum([1.5, 2])", "3.5"),
    ("min(12, 54, 3)", "3"),
    ("min([12, 54, 3]...)", "3"),
    ("max(12, 54, 3)", "54"),
    ("max([12, 54, 3]...)", "54"),
    ("max(-1.5, -2)", "-1.5"),
    ("abs(23)", "23"),
    ("abs(0)", "0"),
    ("abs(-12.4)", "12.4"),
    (r#"abs("-3")"#, "3"),
    ("ceil(5)", "5"),
    ("ceil(5.1)", "6"),
    ("floor(5)", "5"),
    ("floor(4.9)", "4"),
    ("floor(-4.1)", "-5"),
    (r#"parseint("100", 10)"#, "100"),
    (r#"parseint("FF", 16)"#, "255"),
    (r#"parseint("-10", 16)"#, "-16"),
    (r#"parseint("1011111011101111", 2)"#, "48879"),
    (r#"parseint("aA", 62)"#, "656"),
    (
        r#"parseint("18446744073709551615", 10)"#,
        "18446744073709551615",
    ),
    // Conversions.
    (r#"tomap({"a" = 1, "b" = 2})"#, r#"{"a":1,"b":2}"#),
    (
        r#"tomap({"a" = "foo", "b" = true})"#,
        r#"{"a":"foo","b":"true"}"#,
    ),
    (r#"tolist(["a", "b", "c"])"#, r#"["a","b","c"]"#),
    (r#"tolist(["a", "b", 3])"#, r#"["a","b","3"]"#),
    (r#"toset(["a", "b", "c"])"#, r#"["a","b","c"]"#),
    (r#"toset(["a", "b", 3])"#, r#"["3","a","b"]"#),
    (r#"toset(["c", "b", "b"])"#, r#"["b","c"]"#),
    ("toset([10, 9, 10])", "[9,10]"),
    // A number or bool given for a string is converted, as Terraform does.
    ("trimspace(1)", r#""1""#),
    (r#"startswith(10, 1)"#, "true"),
    ("upper(true)", r#""TRUE""#),
    ("tostring(1e21)", r#""1000000000000000000000""#),
    ("tostring(0.1)", r#""0.1""#),
    (r#"join(",", [1.5, true])"#, r#""1.5,true""#),
    // sensitive and nonsensitive leave the value as it is (the marks are
    // config::marks's: src/config/marks_tests.rs).
    (r#"sensitive("x")"#, r#""x""#),
    ("nonsensitive(sensitive([1]))", "[1]"),
    // The examples of docs/config-language.md's table.
    (
        r#"format("%s:%05d %.2f %-5s|", "h", 42, 3.14159, "ab")"#,
        r#""h:00042 3.14 ab   |""#,
    ),
    (r#"regex("(\\d+)\\.(\\d+)", "v1.4")"#, r#"["1","4"]"#),
    (r#"can(regex("^v", "1.4.2"))"#, "false"),
    (r#"try({ a = 1 }.port, 9101)"#, "9101"),
    (
        r#"yamlencode({ a = "b", c = [1] })"#,
        r#""\"a\": \"b\"\n\"c\":\n- 1\n""#,
    ),
    // Edges of ours (docs/config-language.md, the differences).
    (r#"formatlist("%s", [])"#, "[]"),
    ("abs(-9223372036854775807 - 1)", "9223372036854775808"),
    ("element(range(0, 1, 0.1), 3)", "0.30000000000000004"),
    (r#"substr("abc", -10, 2)"#, r#""ab""#),
    (r#"replace("abc", "", "-")"#, r#""-a-b-c-""#),
    // Encodings.
    (
        r#"jsondecode("{\"hello\": \"world\"}")"#,
        r#"{"hello":"world"}"#,
    ),
    (r#"jsondecode("true")"#, "true"),
    (r#"jsondecode("[1, null, 2.5]")"#, "[1,null,2.5]"),
    (
        r#"jsondecode("[\"9999999999999999999999\", 18446744073709551615, -9223372036854775808, 1e3]")"#,
        r#"["9999999999999999999999",18446744073709551615,-9223372036854775808,1000]"#,
    ),
    // yamldecode: Terraform's examples, then go-cty-yaml's tests.
    (r#"yamldecode("hello: world")"#, r#"{"hello":"world"}"#),
    (r#"yamldecode("true")"#, "true"),
    (
        r#"yamldecode("{a: &foo [1, 2, 3], b: *foo}")"#,
        r#"{"a":[1,2,3],"b":[1,2,3]}"#,
    ),
    (r#"yamldecode("\"hello\"")"#, r#""hello""#),
    (r#"yamldecode("'hello'")"#, r#""hello""#),
    // (go-cty-yaml's tests end these without a line break, where
    // yaml-rust2 keeps one: docs/config-language.md, the differences.)
    (
        r#"yamldecode("|\n  hello\n  world\n")"#,
        r#""hello\nworld\n""#,
    ),
    (r#"yamldecode("|-\n  hello\n  world")"#, r#""hello\nworld""#),
    (
        r#"yamldecode(">\n  hello\n  world\n")"#,
        r#""hello world\n""#,
    ),
    (r#"yamldecode("!!str true")"#, r#""true""#),
    (
        r#"yamldecode("!<tag:yaml.org,2002:str> true")"#,
        r#""true""#,
    ),
    (r#"yamldecode("yes")"#, "true"),
    (r#"yamldecode("\"yes\"")"#, r#""yes""#),
    (r#"yamldecode("!!bool true")"#, "true"),
    (r#"yamldecode(".5")"#, "0.5"),
    (r#"yamldecode("1.5")"#, "1.5"),
    (r#"yamldecode("!!float 1.5")"#, "1.5"),
    (r#"yamldecode("12")"#, "12"),
    (r#"yamldecode("-12")"#, "-12"),
    (r#"yamldecode("!!int 1")"#, "1"),
    (r#"yamldecode("!!int 0x1F")"#, "31"),
    (r#"yamldecode("0x1F")"#, r#""0x1F""#),
    (r#"yamldecode("1_000")"#, "1000"),
    (r#"yamldecode("0b101")"#, "5"),
    (r#"yamldecode("2006-1-2")"#, r#""2006-01-02T00:00:00Z""#),
    (
        r#"yamldecode("!!timestamp 2006-1-2")"#,
        r#""2006-01-02T00:00:00Z""#,
    ),
    (
        r#"yamldecode("2001-12-14t21:59:43.10-05:00")"#,
        r#""2001-12-14T21:59:43-05:00""#,
    ),
    (r#"yamldecode("!!binary 'aGVsbG8='")"#, r#""aGVsbG8=""#),
    (r#"yamldecode("null")"#, "null"),
    (r#"yamldecode("~")"#, "null"),
    (r#"yamldecode("{}")"#, "{}"),
    (r#"yamldecode("{a: 1, b: true}")"#, r#"{"a":1,"b":true}"#),
    (
        r#"yamldecode("\na: 1\nb:\n  - foo\n  - bar\n")"#,
        r#"{"a":1,"b":["foo","bar"]}"#,
    ),
    (r#"yamldecode("[a, b, true]")"#, r#"["a","b",true]"#),
    (
        r#"yamldecode("\nfoo: &bar\n  - x\nbar: *bar\n")"#,
        r#"{"bar":["x"],"foo":["x"]}"#,
    ),
    (r#"yamldecode("1: a\ntrue: b")"#, r#"{"1":"a","true":"b"}"#),
    // yamlencode: Terraform's examples, then go-cty-yaml's tests.
    (
        r#"yamlencode({"a":"b", "c":"d"})"#,
        r#""\"a\": \"b\"\n\"c\": \"d\"\n""#,
    ),
    (
        r#"yamlencode({"foo":[1, 2, 3], "bar": "baz"})"#,
        r#""\"bar\": \"baz\"\n\"foo\":\n- 1\n- 2\n- 3\n""#,
    ),
    (
        r#"yamlencode({"foo":[1, {"a":"b","c":"d"}, 3], "bar": "baz"})"#,
        r#""\"bar\": \"baz\"\n\"foo\":\n- 1\n- \"a\": \"b\"\n  \"c\": \"d\"\n- 3\n""#,
    ),
    ("yamlencode(true)", r#""true\n...\n""#),
    (r#"yamlencode("")"#, r#""\"\"\n""#),
    (r#"yamlencode("hello")"#, r#""\"hello\"\n""#),
    ("yamlencode(0)", r#""0\n...\n""#),
    ("yamlencode({})", r#""{}\n""#),
    ("yamlencode([])", r#""[]\n""#),
    (r#"yamlencode(["b"])"#, r#""- \"b\"\n""#),
    ("yamlencode(null)", r#""null\n...\n""#),
    (
        r#"yamlencode({ a = "x\ny" })"#,
        r#""\"a\": |-\n  x\n  y\n""#,
    ),
    (
        r#"yamlencode({ a = { b = [[1, 2], {}] } })"#,
        r#""\"a\":\n  \"b\":\n  - - 1\n    - 2\n  - {}\n""#,
    ),
    (r#"yamlencode("tab\there")"#, r#""\"tab\\there\"\n""#),
    (
        r#"yamldecode(yamlencode({ a = ["x\ny\n", "", 1.5, null, { "k:" = "v #" }] }))"#,
        r#"{"a":["x\ny\n","",1.5,null,{"k:":"v #"}]}"#,
    ),
    (r#"base64encode("Hello World")"#, r#""SGVsbG8gV29ybGQ=""#),
    (r#"base64decode("SGVsbG8gV29ybGQ=")"#, r#""Hello World""#),
    (
        r#"sha256("hello world")"#,
        r#""b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9""#,
    ),
];

#[test]
fn terraform_documented_examples() {
    let mut wrong = Vec::new();
    for (expr, want) in EXAMPLES {
        let want_value: serde_json::Value = serde_json::from_str(want).unwrap();
        match eval(expr) {
            Ok(got) if got == want_value => {}
            got => wrong.push(format!("{expr}: want {want}, got {got:?}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// An expression and a part of its error message.
const ERRORS: &[(&str, &str)] = &[
    (
        r#"regex("[a-z]+", "53453453.34534523454")"#,
        "pattern did not match any part of the given string",
    ),
    (
        r#"regex("(?P<a>x)(y)", "xy")"#,
        "cannot mix both named and unnamed capture groups",
    ),
    (r#"regexall("(", "x")"#, "invalid regexp pattern `(`"),
    (
        r#"yamldecode("{a: &foo [1, *foo, 3]}")"#,
        r#"cannot refer to anchor "foo" from inside its own definition"#,
    ),
    (
        r#"yamldecode("{a: !not-supported foo}")"#,
        r#"unsupported tag "!not-supported""#,
    ),
    (
        r#"yamldecode("!!nope foo")"#,
        r#"unsupported tag "tag:yaml.org,2002:nope""#,
    ),
    (
        r#"yamldecode("!!bool bananas")"#,
        r#"cannot parse "bananas" as tag:yaml.org,2002:bool"#,
    ),
    (r#"yamldecode(".NaN")"#, "not a number cutover can hold"),
    (
        r#"yamldecode("!!binary '>>>>>>>>>'")"#,
        r#"cannot parse ">>>>>>>>>" as tag:yaml.org,2002:binary: not valid base64"#,
    ),
    (
        r#"yamldecode("a: 1\n---\nb: 2")"#,
        "only a single document is allowed",
    ),
    (r#"yamldecode("")"#, "missing start of document"),
    (
        r#"yamldecode("? [a]\n: 1")"#,
        "only strings are allowed as mapping keys",
    ),
    (r#"yamldecode("~: 1")"#, "mapping key cannot be null"),
    (r#"yamldecode("a: [1")"#, "on line "),
    (
        r#"yamldecode("\nfoo: &bar\n  - x\n  - *bar\n")"#,
        "on line 4, column 5: cannot refer to anchor \"bar\"",
    ),
    // Operators and try.
    ("1 / 0", "division by zero"),
    ("5 % 0", "division by zero"),
    ("[for x in [0, 1] : 10 / x]", "division by zero"),
    ("1e308 * 10", "the result of `*` is out of range"),
    (
        "18446744073709551615 + 1",
        "the result of `+` is out of range",
    ),
    ("-9223372036854775807 - 10", "out of range"),
    ("9223372036854775807 * 9223372036854775807", "out of range"),
    (
        r#""a" + 1"#,
        "the left operand of `+` must be a number, got a string that does not hold one",
    ),
    (
        "1 - true",
        "the right operand of `-` must be a number, got bool",
    ),
    ("-null", "the operand of `-` must be a number, got null"),
    (
        "[] < 1",
        "the left operand of `<` must be a number, got list",
    ),
    (
        "try(1 / 0, {}.x)",
        "error calling function `try`: no expression succeeded:\n- division by zero\n- ",
    ),
    // format's errors, as go-cty words them.
    (
        r#"format("%s", null)"#,
        r#"unsupported value for "%s" at 0: null value cannot be formatted"#,
    ),
    (
        r#"format("%s is not in the args list")"#,
        r#"not enough arguments for "%s" at 0: need index 1 but have 0 total"#,
    ),
    (
        r#"format("%[3]s", true, true)"#,
        r#"not enough arguments for "%[3]s" at 0: need index 3 but have 2 total"#,
    ),
    (
        r#"format("%[0]s", true)"#,
        "unrecognized format character '0' at offset 2",
    ),
    (
        r#"format("%v %v %v", true, true)"#,
        r#"not enough arguments for "%v" at 6: need index 3 but have 2 total"#,
    ),
    (
        r#"format("%z", 10)"#,
        r#"unsupported format verb 'z' in "%z" at offset 0"#,
    ),
    (
        r#"format("%012z", 10)"#,
        r#"unsupported format verb 'z' in "%012z" at offset 0"#,
    ),
    (
        r#"format("%☠", 10)"#,
        "unrecognized format character '☠' at offset 1",
    ),
    (
        r#"format("no verbs", 10)"#,
        "too many arguments; no verbs in format string",
    ),
    (
        r#"format("one %d", 10, 11)"#,
        "too many arguments; only 1 used by format string",
    ),
    (
        r#"format("%d", true)"#,
        r#"unsupported value for "%d" at 0: number required"#,
    ),
    (
        r#"format("%d", 1.5)"#,
        r#"unsupported value for "%d" at 0: an integer is required"#,
    ),
    (
        r#"format("%t", 1)"#,
        r#"unsupported value for "%t" at 0: bool required"#,
    ),
    (
        r#"format("%s", [])"#,
        r#"unsupported value for "%s" at 0: string required"#,
    ),
    (
        r#"format("50%")"#,
        "invalid format string starting at offset 2",
    ),
    (
        r#"formatlist("%s", [{}])"#,
        r#"error on format iteration 0: unsupported value for "%s" at 0: string required"#,
    ),
    // Wrong types.
    ("trimspace([1])", "trimspace"),
    ("trimspace(null)", "trimspace"),
    (r#"trim("a", [])"#, "trim"),
    (r#"startswith({}, "a")"#, "startswith"),
    (r#"substr("abc", "x", 1)"#, "offset must be a number"),
    (r#"substr("abc", 1.5, 1)"#, "offset must be a whole number"),
    (
        r#"substr("abc", 0, 1e30)"#,
        "length 1000000000000000000000000000000 is out of range",
    ),
    (r#"replace("a", "/(/", "b")"#, "invalid regexp pattern `(`"),
    (
        r#"formatlist("%s %s", ["a"], ["b", "c"])"#,
        "argument 3 has length 2, which is inconsistent with argument 2 of length 1",
    ),
    (
        r#"formatlist("%d", ["a"])"#,
        r#"error on format iteration 0: unsupported value for "%d" at 0: number required"#,
    ),
    ("range()", "one to three numbers"),
    ("range(1, 2, 3, 4)", "one to three numbers"),
    ("range(1, 2, 0)", "must not be zero"),
    ("range(1, 4, -1)", "step must be positive"),
    ("range(4, 1, 1)", "step must be negative"),
    ("range(2000)", "more than 1024 elements"),
    (r#"range("x")"#, "argument 1 must be a number"),
    ("flatten(1)", "flatten"),
    ("sort([[1]])", "element 0 must be a string, got list"),
    ("distinct({})", "distinct"),
    (r#"zipmap(["a"], [1, 2])"#, "the same length"),
    ("zipmap([[1]], [1])", "key element 0 must be a string"),
    ("slice([1, 2], 1, 3)", "beyond the list's length"),
    ("slice([1, 2], 2, 1)", "greater than the end index"),
    ("slice([1, 2], -1, 1)", "must not be negative"),
    ("element([1], -1)", "the index must not be negative"),
    ("element([], 0)", "empty list"),
    ("element([1], 0.5)", "whole number"),
    ("index([1], 2)", "not in the list"),
    ("compact([[1]])", "must be a string"),
    ("chunklist([1], -1)", "must not be negative"),
    (r#"one(["a", "b"])"#, "zero or one elements"),
    ("alltrue([1])", "element 0 must be a bool, got number"),
    (r#"anytrue(["yes"])"#, "must be a bool"),
    ("sum([])", "empty list"),
    (r#"sum([1, "x"])"#, "element 1 must be a number"),
    (
        "sum([18446744073709551615, 18446744073709551615])",
        "out of range",
    ),
    ("sum([1e308, 1e308])", "out of range"),
    ("min()", "at least one"),
    (r#"max(1, [])"#, "argument 2 must be a number, got list"),
    ("abs(true)", "must be a number, got bool"),
    ("ceil(null)", "must be a number, got null"),
    (
        r#"parseint("12", 2)"#,
        r#"cannot parse "12" as a base 2 integer"#,
    ),
    (r#"parseint("1", 63)"#, "from 2 to 62"),
    (r#"parseint("1", 2.5)"#, "the base must be a whole number"),
    (r#"parseint("", 10)"#, "cannot parse"),
    (r#"parseint("99999999999999999999999", 10)"#, "out of range"),
    (r#"tolist(["a", [1]])"#, "one type"),
    ("tolist(1)", "cannot convert a number to a list"),
    (r#"toset(["a", null])"#, "cannot hold null"),
    (r#"tomap({a = "x", b = {}})"#, "one type"),
    ("tomap([1])", "cannot convert a list to a map"),
    (r#"jsondecode("{")"#, "invalid JSON"),
    (
        r#"jsondecode("[18446744073709551616]")"#,
        "too large to be read exactly",
    ),
    (
        r#"jsondecode("{\"a\": -9223372036854775809}")"#,
        "too large",
    ),
    (r#"base64decode("!!")"#, "not valid base64"),
    (r#"base64decode("/w==")"#, "not valid UTF-8"),
    ("sha256([])", "sha256"),
    ("element([1], 1e30)", "out of range"),
    (r#"parseint("-", 10)"#, "cannot parse"),
    (r#"parseint("é", 16)"#, "cannot parse"),
    ("range(1e300)", "more than 1024 elements"),
];

#[test]
fn errors_name_the_problem() {
    let mut wrong = Vec::new();
    for (expr, want) in ERRORS {
        let fname = &expr[..expr.find('(').unwrap_or_default()];
        match eval(expr) {
            Err(e) if e.contains(want) && e.contains(fname) => {}
            got => wrong.push(format!("{expr}: want an error with {want:?}, got {got:?}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
