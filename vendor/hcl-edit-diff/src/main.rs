//! Parses every file given (or listed on stdin) with upstream hcl-edit 0.10.0 and with
//! cutover's vendored copy, and reports any difference in the result (body, error).
use std::io::BufRead;
use std::time::{Duration, Instant};
fn main() {
    let mut files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        files = std::io::stdin()
            .lock()
            .lines()
            .map(|l| l.unwrap())
            .collect();
    }
    let (mut same, mut differ, mut ok) = (0, 0, 0);
    let (mut t_up, mut t_ours) = (Duration::ZERO, Duration::ZERO);
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let text = String::from_utf8_lossy(&data).into_owned();
        let t = Instant::now();
        let a = upstream::parser::parse_body(&text);
        t_up += t.elapsed();
        let t = Instant::now();
        let b = ours::parser::parse_body(&text);
        t_ours += t.elapsed();
        let (sa, sb) = (
            match &a {
                Ok(body) => format!("ok {:?}\n{}", body, body),
                Err(e) => format!("err {:?} {}", e, e),
            },
            match &b {
                Ok(body) => format!("ok {:?}\n{}", body, body),
                Err(e) => format!("err {:?} {}", e, e),
            },
        );
        if a.is_ok() {
            ok += 1;
        }
        if std::env::var_os("PRINT").is_some() {
            match (&a, &b) {
                (Err(x), Err(y)) => println!(
                    "{f}\n  upstream {}:{} {:?}\n  ours     {}:{} {:?}",
                    x.location().line(),
                    x.location().column(),
                    x.message(),
                    y.location().line(),
                    y.location().column(),
                    y.message()
                ),
                _ => println!("{f}: upstream ok={} ours ok={}", a.is_ok(), b.is_ok()),
            }
        }
        if sa == sb {
            same += 1
        } else {
            differ += 1;
            println!("DIFFER {f}");
        }
    }
    println!(
        "files {} same {} differ {} parsed-ok {} upstream {:?} ours {:?}",
        files.len(),
        same,
        differ,
        ok,
        t_up,
        t_ours
    );
}
