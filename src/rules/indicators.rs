//! Indicator helpers scripts call on maps they keep in their state: native, because each
//! statement of per-symbol bookkeeping costs a Rhai script thousands of instructions, and a
//! strategy runs it for every symbol of every cycle (docs/PERFORMANCE.md). Exact decimals
//! throughout; YAML's whole numbers (integers) are accepted wherever a number is.

use super::api::{Fallible, runtime_error};
use rhai::{Dynamic, Engine, INT, Map};
use rust_decimal::Decimal;

/// The number `m[key]` holds, if any; an error when it holds something else.
fn number_at(m: &Map, key: &str, who: &str) -> Fallible<Option<Decimal>> {
    match m.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_decimal()
            .or_else(|_| v.as_int().map(Decimal::from))
            .map(Some)
            .map_err(|t| runtime_error(format!("{who}: `{key}` holds a {t}, not a number"))),
    }
}

/// `m.ewma(key, x, alpha)`: the exponentially weighted mean kept in map `m` under `key`, updated
/// in place with `x` (weight `alpha` for `x`; the first value is `x` itself). Returns the new mean.
fn ewma(m: &mut Map, key: &str, x: Decimal, alpha: Decimal) -> Fallible<Decimal> {
    let prev = number_at(m, key, "ewma")?;
    ewma_step(m, key, prev, x, alpha)
}

/// Stores and returns the mean after `x`, given the mean `prev` that `m[key]` held.
fn ewma_step(
    m: &mut Map,
    key: &str,
    prev: Option<Decimal>,
    x: Decimal,
    alpha: Decimal,
) -> Fallible<Decimal> {
    let next = match prev {
        None => x,
        Some(prev) => x
            .checked_sub(prev)
            .and_then(|d| d.checked_mul(alpha))
            .and_then(|d| prev.checked_add(d))
            .ok_or_else(|| runtime_error(format!("ewma: `{key}` overflows")))?,
    };
    m.insert(key.into(), Dynamic::from_decimal(next));
    Ok(next)
}

/// `change_bps(from, to)`: |to − from| in basis points of `from`.
fn change_bps(from: Decimal, to: Decimal) -> Fallible<Decimal> {
    if from.is_zero() {
        return Err(runtime_error("change_bps: `from` is zero".into()));
    }
    to.checked_sub(from)
        .and_then(|d| d.abs().checked_mul(Decimal::from(10_000)))
        .and_then(|d| d.checked_div(from))
        .ok_or_else(|| runtime_error("change_bps: overflow".into()))
}

/// Runs `f` on the map `state[key]`, creating it empty when missing.
fn in_state_map<T>(
    state: &mut Map,
    key: &str,
    f: impl FnOnce(&mut Map) -> Fallible<T>,
) -> Fallible<T> {
    let slot = state
        .entry(key.into())
        .or_insert_with(|| Dynamic::from_map(Map::new()));
    if !slot.is_map() {
        return Err(runtime_error(format!(
            "track_mid: state `{key}` holds a {}, not a map",
            slot.type_name()
        )));
    }
    match slot.write_lock::<Map>() {
        Some(mut map) => f(&mut map),
        None => Err(runtime_error(format!("track_mid: state `{key}` is locked"))),
    }
}

/// `state.track_mid(sym, mid, anchor_alpha, vol_alpha)`: a symbol's mid followed in three maps of
/// `state` (each created when missing), in one call:
/// - `vol[sym]`: the EWMA (weight `vol_alpha`) of `change_bps(last_mid[sym], mid)`, updated only
///   when there is a last mid;
/// - `last_mid[sym]`: `mid`;
/// - `anchor[sym]`: the EWMA (weight `anchor_alpha`) of the mid; the mid itself the first time.
///
/// Returns the anchor as it was *before* this mid, or the mid itself when `sym` had none.
fn track_mid(
    state: &mut Map,
    sym: &str,
    mid: Decimal,
    anchor_alpha: Decimal,
    vol_alpha: Decimal,
) -> Fallible<Decimal> {
    let last = in_state_map(state, "last_mid", |last_mid| {
        let last = number_at(last_mid, sym, "track_mid: last_mid")?;
        last_mid.insert(sym.into(), Dynamic::from_decimal(mid));
        Ok(last)
    })?;
    if let Some(last) = last {
        let change = change_bps(last, mid)?;
        in_state_map(state, "vol", |vol| ewma(vol, sym, change, vol_alpha))?;
    }
    in_state_map(state, "anchor", |anchor| {
        let before = number_at(anchor, sym, "track_mid: anchor")?;
        ewma_step(anchor, sym, before, mid, anchor_alpha)?;
        Ok(before.unwrap_or(mid))
    })
}

pub(super) fn register(engine: &mut Engine) {
    engine
        // YAML gives whole numbers as integers: every mix of integer and decimal is accepted.
        .register_fn("ewma", ewma)
        .register_fn("ewma", |m: &mut Map, key: &str, x: INT, alpha: Decimal| {
            ewma(m, key, Decimal::from(x), alpha)
        })
        .register_fn("ewma", |m: &mut Map, key: &str, x: Decimal, alpha: INT| {
            ewma(m, key, x, Decimal::from(alpha))
        })
        .register_fn("ewma", |m: &mut Map, key: &str, x: INT, alpha: INT| {
            ewma(m, key, Decimal::from(x), Decimal::from(alpha))
        })
        .register_fn("change_bps", change_bps)
        .register_fn("change_bps", |from: INT, to: Decimal| {
            change_bps(Decimal::from(from), to)
        })
        .register_fn("change_bps", |from: Decimal, to: INT| {
            change_bps(from, Decimal::from(to))
        })
        .register_fn("change_bps", |from: INT, to: INT| {
            change_bps(Decimal::from(from), Decimal::from(to))
        })
        .register_fn("track_mid", track_mid)
        .register_fn(
            "track_mid",
            |s: &mut Map, sym: &str, mid: Decimal, a: INT, v: Decimal| {
                track_mid(s, sym, mid, Decimal::from(a), v)
            },
        )
        .register_fn(
            "track_mid",
            |s: &mut Map, sym: &str, mid: Decimal, a: Decimal, v: INT| {
                track_mid(s, sym, mid, a, Decimal::from(v))
            },
        )
        .register_fn(
            "track_mid",
            |s: &mut Map, sym: &str, mid: Decimal, a: INT, v: INT| {
                track_mid(s, sym, mid, Decimal::from(a), Decimal::from(v))
            },
        );
}

#[cfg(test)]
mod tests {
    use rhai::{Dynamic, Engine};
    use rust_decimal::Decimal;

    fn engine() -> Engine {
        crate::rules::sandbox::build_engine(&crate::config::SandboxLimits::default())
    }

    fn eval(script: &str) -> Result<Dynamic, String> {
        engine().eval::<Dynamic>(script).map_err(|e| e.to_string())
    }

    fn dec(v: &Dynamic) -> Decimal {
        v.as_decimal()
            .unwrap_or_else(|t| panic!("not a decimal: {t}"))
    }

    fn decimals(script: &str) -> Vec<Decimal> {
        let v = eval(script).unwrap_or_else(|e| panic!("{script}: {e}"));
        let out = v.into_array().unwrap_or_else(|t| panic!("{t}"));
        out.iter().map(dec).collect()
    }

    #[test]
    fn ewma_starts_at_the_first_value_then_moves_by_alpha_in_place() {
        let out = decimals(
            "let m = #{}; m.ewma(\"a\", 100, 0.5); m.ewma(\"a\", 200.0, 0.5); [m.a, m.ewma(\"a\", 0.0, 0.25)]",
        );
        assert_eq!(out, [Decimal::from(150), Decimal::new(1125, 1)]);
        let whole = eval("let m = #{a: 3}; m.ewma(\"a\", 5, 1)").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            dec(&whole),
            Decimal::from(5),
            "an integer alpha (a YAML `1`) works too"
        );
        let err = eval("let m = #{a: \"x\"}; m.ewma(\"a\", 1.0, 0.5)").err();
        assert!(err.is_some_and(|e| e.contains("ewma: `a` holds a string")));
    }

    #[test]
    fn change_bps_is_exact_and_refuses_a_zero_base() {
        let v = eval("change_bps(200.0, 199.5)").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(dec(&v), Decimal::from(25));
        let v = eval("change_bps(40, 41)").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(dec(&v), Decimal::from(250));
        assert!(eval("change_bps(0, 1.0)").is_err_and(|e| e.contains("`from` is zero")));
    }

    #[test]
    fn track_mid_does_what_the_three_statements_it_replaces_do() {
        // The same mids through track_mid and through ewma/change_bps by hand.
        let out = decimals(
            "let s = #{}; let t = #{anchor: #{}, vol: #{}, last_mid: #{}};
             let before = [];
             for mid in [100.0, 102.0, 101.0, 101.5] {
                 before.push(s.track_mid(\"X\", mid, 0.1, 0.5));
                 if \"X\" in t.last_mid { t.vol.ewma(\"X\", change_bps(t.last_mid.X, mid), 0.5); }
                 t.last_mid.X = mid;
                 if !(\"X\" in t.anchor) { t.anchor.X = mid; } else { t.anchor.ewma(\"X\", mid, 0.1); }
             }
             before + [s.anchor.X, t.anchor.X, s.vol.X, t.vol.X, s.last_mid.X]",
        );
        // The anchor before each mid: the first mid itself, then 100, 100.2, 100.28.
        assert_eq!(
            out[..4],
            [
                Decimal::from(100),
                Decimal::from(100),
                Decimal::new(1002, 1),
                Decimal::new(10028, 2)
            ]
        );
        assert_eq!(out[4], out[5], "anchor");
        assert_eq!(out[4], Decimal::new(100402, 3));
        assert_eq!(out[6], out[7], "vol");
        assert_eq!(out[8], Decimal::new(1015, 1), "last mid");
        // The vol: 200 bps, then |101 − 102| / 102 and |101.5 − 101| / 101 in bps, halved in.
        let v1 = Decimal::from(200);
        let v2 = v1 + (Decimal::from(10_000) / Decimal::from(102) - v1) / Decimal::from(2);
        let v3 = v2 + (Decimal::from(5_000) / Decimal::from(101) - v2) / Decimal::from(2);
        assert_eq!(out[6], v3);
    }

    #[test]
    fn track_mid_takes_whole_alphas_and_refuses_state_of_the_wrong_shape() {
        let out = decimals(
            "let s = #{}; [s.track_mid(\"X\", 10.0, 1, 0.5), s.track_mid(\"X\", 20.0, 1, 1), s.anchor.X]",
        );
        assert_eq!(
            out,
            [Decimal::from(10), Decimal::from(10), Decimal::from(20)]
        );
        let err = eval("let s = #{anchor: 5}; s.track_mid(\"X\", 1.0, 0.1, 0.1)").err();
        assert!(
            err.as_deref().is_some_and(
                |e| e.contains("track_mid: state `anchor` holds a") && e.contains("not a map")
            ),
            "{err:?}"
        );
        let err =
            eval("let s = #{last_mid: #{X: \"up\"}}; s.track_mid(\"X\", 1.0, 0.1, 0.1)").err();
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains("track_mid: last_mid: `X` holds a string")),
            "{err:?}"
        );
        let err = eval("let s = #{last_mid: #{X: 0.0}}; s.track_mid(\"X\", 1.0, 0.1, 0.1)").err();
        assert!(
            err.as_deref().is_some_and(|e| e.contains("`from` is zero")),
            "{err:?}"
        );
    }
}
