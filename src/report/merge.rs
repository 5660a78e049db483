//! Walking two sorted row streams side by side, one group of equal keys at a time: how two runs
//! are compared with one cycle's rows in memory rather than every row of both.

use crate::store::{Rows, StoreError};
use std::iter::Peekable;

/// Calls `each(key, a's rows, b's rows)` for every key either stream has, in key order. Both
/// streams must be sorted by `key` (their SQL orders them so); the first `Err` ends the walk.
///
/// # Errors
/// The first error either stream yields.
pub(crate) fn merge_groups<T, K: Ord + Copy>(
    a: Rows<'_, T>,
    b: Rows<'_, T>,
    key: impl Fn(&T) -> K,
    mut each: impl FnMut(K, Vec<T>, Vec<T>),
) -> Result<(), StoreError> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    loop {
        let (ka, kb) = (next_key(&mut a, &key)?, next_key(&mut b, &key)?);
        let k = match (ka, kb) {
            (None, None) => return Ok(()),
            (Some(k), None) | (None, Some(k)) => k,
            (Some(x), Some(y)) => x.min(y),
        };
        let (ga, gb) = (group(&mut a, &key, k)?, group(&mut b, &key, k)?);
        each(k, ga, gb);
    }
}

type Stream<'r, 'a, T> = Peekable<&'r mut (dyn Iterator<Item = Result<T, StoreError>> + 'a)>;

/// The key of the next row, or the stream's error.
fn next_key<T, K>(
    rows: &mut Stream<'_, '_, T>,
    key: &impl Fn(&T) -> K,
) -> Result<Option<K>, StoreError> {
    if let Some(Err(e)) = rows.next_if(Result::is_err) {
        return Err(e);
    }
    Ok(match rows.peek() {
        Some(Ok(row)) => Some(key(row)),
        _ => None,
    })
}

/// The run of rows whose key is `k` at the head of `rows`.
fn group<T, K: PartialEq>(
    rows: &mut Stream<'_, '_, T>,
    key: &impl Fn(&T) -> K,
    k: K,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    loop {
        match rows.next_if(|r| r.as_ref().map_or(true, |row| key(row) == k)) {
            Some(Ok(row)) => out.push(row),
            Some(Err(e)) => return Err(e),
            None => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(
        a: Vec<Result<(i64, char), StoreError>>,
        b: Vec<Result<(i64, char), StoreError>>,
    ) -> Result<Vec<(i64, String, String)>, StoreError> {
        let mut out = Vec::new();
        let text = |g: Vec<(i64, char)>| g.into_iter().map(|(_, c)| c).collect::<String>();
        merge_groups(
            &mut a.into_iter(),
            &mut b.into_iter(),
            |row| row.0,
            |k, ga, gb| out.push((k, text(ga), text(gb))),
        )?;
        Ok(out)
    }

    #[test]
    fn groups_of_both_streams_meet_by_key_and_gaps_on_either_side_are_empty() {
        let a = vec![Ok((1, 'a')), Ok((1, 'b')), Ok((3, 'c')), Ok((7, 'd'))];
        let b = vec![Ok((2, 'x')), Ok((3, 'y')), Ok((3, 'z')), Ok((9, 'w'))];
        let got = walk(a, b).unwrap_or_default();
        let want: Vec<(i64, String, String)> = [
            (1, "ab", ""),
            (2, "", "x"),
            (3, "c", "yz"),
            (7, "d", ""),
            (9, "", "w"),
        ]
        .into_iter()
        .map(|(k, x, y)| (k, x.to_string(), y.to_string()))
        .collect();
        assert_eq!(got, want);
        assert_eq!(walk(vec![], vec![]).unwrap_or_default(), vec![]);
    }

    #[test]
    fn an_error_in_either_stream_ends_the_walk() {
        let broken = || StoreError::corrupt("decisions", "price", "\"x\" is not a decimal");
        let a = vec![Ok((1, 'a')), Err(broken()), Ok((5, 'b'))];
        assert!(walk(a, vec![Ok((1, 'x'))]).is_err());
        let b = vec![Ok((1, 'x')), Ok((1, 'y')), Err(broken())];
        assert!(walk(vec![Ok((1, 'a'))], b).is_err());
    }
}
