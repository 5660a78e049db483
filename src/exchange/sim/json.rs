//! A minimal JSON writer for the simulated exchange's bodies.
//!
//! Keys keep their insertion order (the bodies follow the reference payloads' order), and a
//! decimal BTCTurk sends as a JSON *number* (ticker prices, `preciseAmount`) is written from the
//! `Decimal`'s exact text: serde_json's `arbitrary_precision` feature is off, and money never
//! goes through f64.

use rust_decimal::Decimal;
use std::fmt::Write as _;

/// A JSON value to write.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum J {
    Null,
    Bool(bool),
    Int(i128),
    /// A decimal written as a JSON number, from its exact text.
    Num(Decimal),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(&'static str, J)>),
}

impl J {
    pub(crate) fn str(s: impl Into<String>) -> J {
        J::Str(s.into())
    }
    /// A decimal as a JSON string, trailing zeros dropped (`"0.5"`, `"3500010"`).
    pub(crate) fn dec(d: Decimal) -> J {
        J::Str(d.normalize().to_string())
    }
    /// A decimal as a JSON number, trailing zeros dropped.
    pub(crate) fn num(d: Decimal) -> J {
        J::Num(d.normalize())
    }
    pub(crate) fn int(i: impl Into<i128>) -> J {
        J::Int(i.into())
    }

    /// The JSON text.
    pub(crate) fn text(&self) -> String {
        let mut out = String::with_capacity(256);
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Int(i) => {
                let _ = write!(out, "{i}");
            }
            J::Num(d) => {
                let _ = write!(out, "{d}");
            }
            J::Str(s) => write_str(out, s),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            J::Obj(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(out, k);
                    out.push(':');
                    v.write(out);
                }
                out.push('}');
            }
        }
    }
}

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `ms` since the epoch as BTCTurk's `serverTime2`: `2021-02-14T14:37:42.0210000+00:00`.
pub(crate) fn iso_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}0000+00:00",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn numbers_keep_their_decimal_text_and_strings_are_escaped() {
        let d = |s: &str| Decimal::from_str(s).unwrap_or_default();
        let v = J::Obj(vec![
            ("a", J::num(d("-0.3384081100000000"))),
            ("b", J::dec(d("20000.00"))),
            ("c", J::str("x\"\\\u{1}y")),
            (
                "d",
                J::Arr(vec![
                    J::Null,
                    J::Bool(true),
                    J::int(1_181_163_798_924_649_598_i64),
                ]),
            ),
        ]);
        let text = v.text();
        assert_eq!(
            text,
            r#"{"a":-0.33840811,"b":"20000","c":"x\"\\\u0001y","d":[null,true,1181163798924649598]}"#
        );
        assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok());
    }

    #[test]
    fn server_time_text() {
        assert_eq!(
            iso_utc(1_613_313_462_021),
            "2021-02-14T14:37:42.0210000+00:00"
        );
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00.0000000+00:00");
    }
}
