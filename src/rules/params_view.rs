//! `Params`: the read-only named values scripts see as `ctx.params`, `ctx.limits` and
//! `ctx.stats`. A view can log which keys a script read, so that `rules diff` knows when a
//! candidate's different limit could not have changed a call (see `engine::reuse`).

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, Position};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

type Fallible<T> = Result<T, Box<EvalAltResult>>;

/// Which keys of a view were read since the last [`KeyReads::take`]: bit `i` is the view's
/// `i`-th key in key order; a key past the 63rd, or a `keys()` listing, sets every bit.
#[derive(Debug, Default)]
pub struct KeyReads(AtomicU64);

/// Every key: what a `keys()` listing, an unknown key or a key past the 63rd marks, so it
/// overlaps any set of differing keys.
pub const ALL_KEYS: u64 = u64::MAX;

impl KeyReads {
    /// The keys read since the last call, and a fresh start.
    pub fn take(&self) -> u64 {
        self.0.swap(0, Ordering::Relaxed)
    }
    fn mark(&self, bits: u64) {
        self.0.fetch_or(bits, Ordering::Relaxed);
    }
}

/// The bit of the key at `index` in a view's key order.
pub fn key_bit(index: usize) -> u64 {
    if index < 63 { 1 << index } else { ALL_KEYS }
}

/// Read-only named values. Each key is a registered property, so reading one is a direct call
/// and a misspelt key is an error, never `()`. The entries are kept in key order, so that a
/// getter finds its key at the position it found it last time with one string compare instead
/// of a search (a script reads its params and limits dozens of times a cycle).
#[derive(Debug, Clone, Default)]
pub struct ParamsView(Arc<[(Box<str>, Dynamic)]>, Option<Arc<KeyReads>>);

impl ParamsView {
    pub fn new(map: Map) -> Self {
        Self(Self::entries_of(&map), None)
    }
    /// A view that logs the keys read into `reads`.
    pub fn logged(map: Map, reads: Arc<KeyReads>) -> Self {
        Self(Self::entries_of(&map), Some(reads))
    }
    fn entries_of(map: &Map) -> Arc<[(Box<str>, Dynamic)]> {
        // A `Map` iterates in key order.
        map.iter()
            .map(|(k, v)| (k.as_str().into(), v.clone()))
            .collect()
    }
    /// The entries in key order (the order of the bits of [`KeyReads`]).
    pub fn entries(&self) -> &[(Box<str>, Dynamic)] {
        &self.0
    }
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| &**k)
    }
    fn position(&self, key: &str) -> Option<usize> {
        self.0.binary_search_by(|(k, _)| (**k).cmp(key)).ok()
    }
    /// The value under `key`, unlogged (for the engine; scripts read through the getters).
    pub fn value(&self, key: &str) -> Option<&Dynamic> {
        self.position(key).map(|at| &self.0[at].1)
    }
    /// `key`, whose bit in this view's key order is `bit` when this view logs its reads; `hint`
    /// is where the key was found last (in any view), tried first.
    fn get_logged(&self, key: &str, bit: u64, hint: &AtomicUsize) -> Fallible<Dynamic> {
        if let Some(reads) = &self.1 {
            reads.mark(bit);
        }
        let last = hint.load(Ordering::Relaxed);
        if let Some((k, v)) = self.0.get(last)
            && &**k == key
        {
            return Ok(v.clone());
        }
        let at = self.position(key).ok_or_else(|| self.unknown(key))?;
        hint.store(at, Ordering::Relaxed);
        Ok(self.0[at].1.clone())
    }
    fn get(&self, key: &str) -> Fallible<Dynamic> {
        let at = self.position(key);
        if let Some(reads) = &self.1 {
            reads.mark(at.map_or(ALL_KEYS, key_bit));
        }
        at.map(|at| self.0[at].1.clone())
            .ok_or_else(|| self.unknown(key))
    }
    fn unknown(&self, key: &str) -> Box<EvalAltResult> {
        let known: Vec<&str> = self.keys().collect();
        Box::new(EvalAltResult::ErrorRuntime(
            format!("unknown key `{key}` (known: {})", known.join(", ")).into(),
            Position::NONE,
        ))
    }
    fn key_array(&self) -> Array {
        if let Some(reads) = &self.1 {
            reads.mark(ALL_KEYS);
        }
        self.keys().map(|k| Dynamic::from(k.to_string())).collect()
    }
}

/// Registers the `Params` type and one getter per key in `keys` (the union over every script's
/// params, the limits and the stats; a getter errors when its view lacks the key).
/// `logged_keys` are the keys, in order, of the one view that logs its reads (the limits): a
/// getter marks its key's bit there without looking it up.
pub fn register_param_keys<'a>(
    engine: &mut Engine,
    keys: impl IntoIterator<Item = &'a str>,
    logged_keys: &[&str],
) {
    engine
        .register_type_with_name::<ParamsView>("Params")
        .register_indexer_get(|p: &mut ParamsView, key: &str| p.get(key))
        // Which keys exist is the same for every rule set (the limits are a fixed list; a
        // params view is compared whole), so `contains` needs no logging.
        .register_fn("contains", |p: &mut ParamsView, key: &str| {
            p.position(key).is_some()
        })
        .register_fn("keys", |p: &mut ParamsView| p.key_array());
    for key in keys {
        let owned = key.to_string();
        let bit = logged_keys
            .iter()
            .position(|k| *k == key)
            .map_or(ALL_KEYS, key_bit);
        let hint = AtomicUsize::new(0);
        engine.register_get(key, move |p: &mut ParamsView| {
            p.get_logged(&owned, bit, &hint)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine_with(view: &ParamsView) -> (Engine, rhai::Scope<'static>) {
        let mut engine = Engine::new();
        let keys: Vec<String> = view.keys().map(ToString::to_string).collect();
        let names: Vec<&str> = keys.iter().map(String::as_str).collect();
        register_param_keys(&mut engine, names.iter().copied(), &names);
        let mut scope = rhai::Scope::new();
        scope.push("l", view.clone());
        (engine, scope)
    }

    #[test]
    fn a_logged_view_records_exactly_the_keys_read() {
        let map: Map = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, k)| {
                (
                    (*k).into(),
                    Dynamic::from_int(i64::try_from(i).unwrap_or(0)),
                )
            })
            .collect();
        let reads = Arc::new(KeyReads::default());
        let view = ParamsView::logged(map, Arc::clone(&reads));
        let (engine, mut scope) = engine_with(&view);
        let run = |scope: &mut rhai::Scope, script: &str| {
            let _value = engine
                .eval_with_scope::<Dynamic>(scope, script)
                .unwrap_or_else(|e| panic!("{script}: {e}"));
        };
        run(&mut scope, "l.c");
        assert_eq!(reads.take(), 0b100);
        assert_eq!(reads.take(), 0, "take starts afresh");
        run(&mut scope, "l[\"a\"] + l.c");
        assert_eq!(reads.take(), 0b101);
        run(&mut scope, "l.contains(\"b\")");
        assert_eq!(reads.take(), 0);
        run(&mut scope, "l.keys()");
        assert_eq!(reads.take(), ALL_KEYS);
        assert!(
            engine
                .eval_with_scope::<Dynamic>(&mut scope, "l[\"zz\"]")
                .is_err()
        );
        assert_eq!(reads.take(), ALL_KEYS, "an unknown key counts as every key");
    }

    #[test]
    fn a_key_at_different_places_in_two_views_reads_right_from_both() {
        let int = |i: i64| Dynamic::from_int(i);
        let first: Map = [("a".into(), int(1)), ("b".into(), int(2))]
            .into_iter()
            .collect();
        let second: Map = [("b".into(), int(20)), ("c".into(), int(30))]
            .into_iter()
            .collect();
        let mut engine = Engine::new();
        register_param_keys(&mut engine, ["a", "b", "c"], &[]);
        let mut scope = rhai::Scope::new();
        scope.push("x", ParamsView::new(first));
        scope.push("y", ParamsView::new(second));
        // `b` is the second key of x and the first of y: every read moves the getter's hint.
        let sum = engine
            .eval_with_scope::<i64>(&mut scope, "x.b + y.b + x.b + y.c + x.a + y.b")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sum, 2 + 20 + 2 + 30 + 1 + 20);
        let missing = engine.eval_with_scope::<i64>(&mut scope, "y.a");
        assert!(
            missing.is_err_and(|e| e.to_string().contains("unknown key `a`")),
            "a key the view lacks is an error naming it"
        );
    }

    #[test]
    fn an_unlogged_view_reads_the_same() {
        let map: Map = [("x".into(), Dynamic::from_int(7))].into_iter().collect();
        let view = ParamsView::new(map);
        let (engine, mut scope) = engine_with(&view);
        let x = engine
            .eval_with_scope::<i64>(&mut scope, "l.x + l[\"x\"]")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(x, 14);
    }
}
