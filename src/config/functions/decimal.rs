//! Numbers as decimal digits, for the number verbs of `format` (`%e %f %g`)
//! and a number's string form, written as Go's `strconv` writes them, which
//! is what Terraform shows.
//!
//! A whole number is its exact digits; a fraction (an f64) is either its
//! exact binary value written in decimal (for a given precision, rounded
//! half to even as Go rounds) or the shortest digits that read back as it
//! (for the default precision of `%g` and `%v`).

use super::numbers::Num;

/// `0.digits × 10^point`, sign apart. No leading or trailing zero digit;
/// zero has no digits.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Decimal {
    negative: bool,
    digits: Vec<u8>,
    point: i32,
}

impl Decimal {
    /// The exact value of `n`.
    pub(super) fn exact(n: Num) -> Decimal {
        match n {
            Num::Int(i) => Decimal::from_text(i < 0, &i.unsigned_abs().to_string(), None),
            // 1100 places hold every digit of any f64 (the smallest has 1074
            // after the point).
            Num::Float(f) => scientific(f.is_sign_negative(), &format!("{:.1100e}", f.abs())),
        }
    }

    /// The fewest digits that read back as `n`.
    pub(super) fn shortest(n: Num) -> Decimal {
        match n {
            Num::Int(_) => Decimal::exact(n),
            Num::Float(f) => scientific(f.is_sign_negative(), &format!("{:e}", f.abs())),
        }
    }

    fn from_text(negative: bool, digits: &str, point: Option<i32>) -> Decimal {
        let digits = digits.trim_start_matches('0');
        let point = point.unwrap_or(digits.len() as i32);
        let mut d = Decimal {
            negative,
            digits: digits.as_bytes().to_vec(),
            point,
        };
        d.trim();
        d
    }

    fn trim(&mut self) {
        while self.digits.last() == Some(&b'0') {
            self.digits.pop();
        }
        if self.digits.is_empty() {
            self.point = 0;
        }
    }

    /// Keep `n` significant digits, rounding half to even.
    fn round(&mut self, n: usize) {
        if n >= self.digits.len() {
            return;
        }
        let up = match self.digits[n] {
            b'6'..=b'9' => true,
            b'5' if self.digits.len() > n + 1 => true,
            // Exactly half: to even.
            b'5' => n > 0 && (self.digits[n - 1] - b'0') % 2 == 1,
            _ => false,
        };
        self.digits.truncate(n);
        if up {
            let mut i = n;
            loop {
                if i == 0 {
                    self.digits.insert(0, b'1');
                    self.point += 1;
                    break;
                }
                i -= 1;
                if self.digits[i] == b'9' {
                    self.digits[i] = b'0';
                } else {
                    self.digits[i] += 1;
                    break;
                }
            }
        }
        self.trim();
    }

    /// Round to `places` digits after the point.
    fn round_places(&mut self, places: usize) {
        let keep = self.point + places as i32;
        if keep < 0 {
            self.digits.clear();
            self.trim();
        } else {
            self.round(keep as usize);
        }
    }

    fn digit(&self, i: i32) -> char {
        usize::try_from(i)
            .ok()
            .and_then(|i| self.digits.get(i))
            .map_or('0', |d| *d as char)
    }

    fn sign(&self) -> &'static str {
        if self.negative {
            "-"
        } else {
            ""
        }
    }

    /// `%f`: `places` digits after the point (`None`: as many as there are).
    pub(super) fn fixed(&self, places: Option<usize>) -> String {
        let mut d = self.clone();
        if let Some(p) = places {
            d.round_places(p);
        }
        let places = places.unwrap_or_else(|| (d.digits.len() as i32 - d.point).max(0) as usize);
        let mut out = d.sign().to_string();
        if d.point <= 0 {
            out.push('0');
        } else {
            (0..d.point).for_each(|i| out.push(d.digit(i)));
        }
        if places > 0 {
            out.push('.');
            (0..places as i32).for_each(|i| out.push(d.digit(d.point + i)));
        }
        out
    }

    /// `%e`: one digit, the point, `places` digits (`None`: as many as
    /// there are), then the exponent of at least two digits.
    pub(super) fn scientific(&self, places: Option<usize>, e: char) -> String {
        let mut d = self.clone();
        if let Some(p) = places {
            d.round(p + 1);
        }
        let places = places.unwrap_or(d.digits.len().saturating_sub(1));
        let mut out = d.sign().to_string();
        out.push(d.digit(0));
        if places > 0 {
            out.push('.');
            (1..=places as i32).for_each(|i| out.push(d.digit(i)));
        }
        let exp = if d.digits.is_empty() { 0 } else { d.point - 1 };
        out.push(e);
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
        out
    }

    /// `%g`: `significant` digits (`None`: the shortest), in `%e` form for
    /// large and small exponents, else in `%f` form, as Go's strconv.
    pub(super) fn general(&self, significant: Option<usize>, e: char) -> String {
        let mut d = self.clone();
        let shortest = significant.is_none();
        let mut prec = significant.map_or(d.digits.len(), |p| p.max(1));
        if !shortest {
            d.round(prec);
        }
        let nd = d.digits.len().max(1);
        let mut eprec = prec;
        if eprec > nd && nd as i32 >= d.point {
            eprec = nd;
        }
        if shortest {
            eprec = 6;
        }
        let exp = if d.digits.is_empty() { 0 } else { d.point - 1 };
        if exp < -4 || exp >= eprec as i32 {
            prec = prec.min(nd);
            return d.scientific(Some(prec - 1), e);
        }
        if prec as i32 > d.point {
            prec = nd;
        }
        d.fixed(Some((prec as i32 - d.point).max(0) as usize))
    }
}

/// Read Rust's `{:e}` form (`1.2345e-7`).
fn scientific(negative: bool, text: &str) -> Decimal {
    let (mantissa, exp) = text.split_once('e').unwrap_or((text, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let lead = digits.len() - digits.trim_start_matches('0').len();
    Decimal::from_text(negative, &digits, Some(exp + 1 - lead as i32))
}

/// A number as Terraform converts it to a string: every digit, no exponent.
pub(super) fn number_string(n: Num) -> String {
    Decimal::shortest(n).fixed(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(x: f64) -> Decimal {
        Decimal::exact(Num::Float(x))
    }

    #[test]
    fn as_go_writes_them() {
        let i = |n: i128| Decimal::exact(Num::Int(n));
        assert_eq!(i(10).fixed(Some(6)), "10.000000");
        assert_eq!(i(1000).scientific(Some(6), 'e'), "1.000000e+03");
        assert_eq!(i(1000).general(None, 'e'), "1000");
        assert_eq!(i(1234567).general(None, 'e'), "1.234567e+06");
        assert_eq!(i(100000).general(None, 'e'), "100000");
        assert_eq!(i(0).general(None, 'e'), "0");
        assert_eq!(i(0).scientific(Some(2), 'e'), "0.00e+00");
        assert_eq!(f(1.06).fixed(Some(1)), "1.1");
        assert_eq!(f(2.5).fixed(Some(0)), "2");
        assert_eq!(f(-0.5).fixed(Some(3)), "-0.500");
        let short = |x: f64| Decimal::shortest(Num::Float(x));
        assert_eq!(short(1e-23).general(None, 'E'), "1E-23");
        assert_eq!(f(1.23456).general(Some(3), 'e'), "1.23");
        assert_eq!(f(1.0).general(Some(3), 'e'), "1");
        assert_eq!(i(12345).general(Some(2), 'e'), "1.2e+04");
        assert_eq!(short(0.0001).general(None, 'e'), "0.0001");
        assert_eq!(short(0.00001).general(None, 'e'), "1e-05");
        assert_eq!(f(999.99).fixed(Some(1)), "1000.0");
        assert_eq!(number_string(Num::Float(1e21)), "1000000000000000000000");
        assert_eq!(number_string(Num::Float(0.1)), "0.1");
        assert_eq!(number_string(Num::Int(-42)), "-42");
    }
}
