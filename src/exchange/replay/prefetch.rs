//! Decoding a dataset on a second thread: gunzip, CSV and decimal parsing run beside the cycle
//! instead of inside it. Events arrive in order, in batches through a bounded channel, so memory
//! stays flat whatever the dataset's size.

use super::dataset::{DatasetError, EventStream, ReplayEvent, open_dataset};
use crate::domain::Symbol;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

/// Events per batch: large enough that the channel costs nothing per event, and that the
/// decoder (fast since `events.bin`) is woken rarely.
const BATCH: usize = 4096;
/// Batches decoded ahead of the consumer.
const AHEAD: usize = 4;
/// Batches a shared feed's consumer may run ahead of the slowest one (16 × 4,096 events, a few
/// MB). `rules diff`'s candidate replay runs faster than its base, which also evaluates the
/// candidate as its shadow; with `AHEAD` it kept stopping to wait for the base, and the three
/// threads shared the 2 cores worse: 0.76–1.08 s against 0.65–0.87 s for a 1M-quote diff.
const SHARED_AHEAD: usize = 16;

type Item = Result<ReplayEvent, DatasetError>;

/// The events of an [`EventStream`], decoded ahead on their own thread (or inline when no
/// thread can be started). Read either as an iterator of events or a batch at a time
/// ([`Prefetched::batch`]), which a replay applies in place, without moving each event.
pub enum Prefetched {
    Ahead {
        rx: Receiver<Vec<Item>>,
        /// The end batch arrived (or the decoder's failure was reported).
        ended: bool,
        /// The dataset, named in the error when the decoder stops unexpectedly.
        source: PathBuf,
        /// Emptied batches back to the decoder, so batches are not allocated anew (a batch is
        /// a few hundred KB: the allocator handed each fresh one out as freshly zeroed pages).
        recycle: SyncSender<Vec<Item>>,
        current: std::vec::IntoIter<Item>,
    },
    Inline(EventStream),
    /// One of several consumers of a single decoding thread (see [`ReplayFeed`]).
    Shared {
        rx: Receiver<Arc<Vec<Item>>>,
        ended: bool,
        source: PathBuf,
        current: Arc<Vec<Item>>,
        next: usize,
        /// The decoder's symbols and this consumer's own copy of each: cloning the decoder's
        /// on every event would bounce their reference counts between the cores.
        own: Vec<(Symbol, Symbol)>,
    },
}

/// A batch of decoded events, in order.
pub enum Batch {
    Owned(Vec<Item>),
    Shared(Arc<Vec<Item>>),
}

impl std::ops::Deref for Batch {
    type Target = [Item];
    fn deref(&self) -> &[Item] {
        match self {
            Batch::Owned(v) => v,
            Batch::Shared(v) => v,
        }
    }
}

/// The stream's next batch (filled into `batch`, which is cleared first), and whether it is the
/// last (the stream ended or failed in it).
fn fill_batch(stream: &mut EventStream, mut batch: Vec<Item>) -> (Vec<Item>, bool) {
    batch.clear();
    batch.reserve(BATCH);
    let mut failed = false;
    for item in stream.by_ref() {
        failed = item.is_err();
        batch.push(item);
        if failed || batch.len() == BATCH {
            break;
        }
    }
    let last = failed || batch.len() < BATCH;
    (batch, last)
}

fn next_batch(stream: &mut EventStream) -> (Vec<Item>, bool) {
    fill_batch(stream, Vec::new())
}

/// Sends every batch, then an empty one that says the data ended: a consumer whose channel
/// closes without it knows the decoder died (a bug) instead of taking it for the end.
fn decode(mut stream: EventStream, tx: &SyncSender<Vec<Item>>, recycled: &Receiver<Vec<Item>>) {
    loop {
        let (batch, last) = fill_batch(&mut stream, recycled.try_recv().unwrap_or_default());
        if batch.is_empty() {
            let _ = tx.send(batch);
            return;
        }
        if tx.send(batch).is_err() {
            return;
        }
        if last {
            let _ = tx.send(Vec::new());
            return;
        }
    }
}

/// The next batch from a decoding thread, `None` once the data ended. A channel that closes
/// before the empty end batch means the decoder stopped unexpectedly: that is an error the
/// replay reports, never a silently shorter run.
fn receive<B>(
    rx: &Receiver<B>,
    ended: &mut bool,
    source: &Path,
    len: impl Fn(&B) -> usize,
) -> Option<Result<B, DatasetError>> {
    if *ended {
        return None;
    }
    match rx.recv() {
        Ok(batch) if len(&batch) == 0 => {
            *ended = true;
            None
        }
        Ok(batch) => Some(Ok(batch)),
        Err(_) => {
            *ended = true;
            Some(Err(DatasetError::new(
                source,
                "the decoding thread stopped before the end of the data (a bug: please report it)",
            )))
        }
    }
}

/// Decodes `stream` once and hands every batch to each consumer still listening; stops when
/// the stream ends or every consumer is gone. A fast consumer runs at most `SHARED_AHEAD`
/// batches ahead of the slowest, so memory stays flat.
fn decode_shared(mut stream: EventStream, mut txs: Vec<SyncSender<Arc<Vec<Item>>>>) {
    let mut in_flight = std::collections::VecDeque::new();
    let end = |txs: &[SyncSender<Arc<Vec<Item>>>]| {
        for tx in txs {
            let _ = tx.send(Arc::new(Vec::new()));
        }
    };
    loop {
        let (batch, last) = next_batch(&mut stream);
        if batch.is_empty() {
            end(&txs);
            return;
        }
        let batch = Arc::new(batch);
        txs.retain(|tx| tx.send(Arc::clone(&batch)).is_ok());
        // The batches are dropped here, once every consumer is done with them, so that the
        // reference counts of their symbols only ever change on this thread.
        in_flight.push_back(batch);
        while in_flight.front().is_some_and(|b| Arc::strong_count(b) == 1) {
            in_flight.pop_front();
        }
        if txs.is_empty() || last {
            end(&txs);
            return;
        }
    }
}

/// The events of one dataset, decoded once on one thread for several replays of it (`rules
/// diff` replays the same data with two rule sets). Each replay takes its own stream; a feed
/// only serves a replay of the dataset it was opened on.
#[derive(Clone)]
pub struct ReplayFeed {
    dataset: PathBuf,
    stream: Arc<Mutex<Option<Prefetched>>>,
}

impl std::fmt::Debug for ReplayFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReplayFeed({})", self.dataset.display())
    }
}

impl ReplayFeed {
    /// Opens `dataset` and starts one decoding thread feeding `consumers` streams.
    ///
    /// # Errors
    /// When the dataset cannot be opened or its decoding thread cannot start.
    pub fn open(dataset: &Path, consumers: usize) -> Result<Vec<ReplayFeed>, DatasetError> {
        let stream = open_dataset(dataset)?.events()?;
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..consumers)
            .map(|_| sync_channel::<Arc<Vec<Item>>>(SHARED_AHEAD))
            .unzip();
        std::thread::Builder::new()
            .name("replay-decode".into())
            .spawn(move || decode_shared(stream, txs))
            .map_err(|e| DatasetError::new(dataset, format!("cannot start decoding: {e}")))?;
        let key = feed_key(dataset);
        Ok(rxs
            .into_iter()
            .map(|rx| ReplayFeed {
                dataset: key.clone(),
                stream: Arc::new(Mutex::new(Some(Prefetched::Shared {
                    rx,
                    ended: false,
                    source: dataset.to_path_buf(),
                    current: Arc::new(Vec::new()),
                    next: 0,
                    own: Vec::new(),
                }))),
            })
            .collect())
    }

    /// This feed's stream, for a replay of `dataset`; `None` when it was taken already or the
    /// feed decodes another dataset.
    pub fn take_for(&self, dataset: &Path) -> Option<Prefetched> {
        if feed_key(dataset) != self.dataset {
            return None;
        }
        self.stream.lock().ok()?.take()
    }
}

fn feed_key(dataset: &Path) -> PathBuf {
    std::fs::canonicalize(dataset).unwrap_or_else(|_| dataset.to_path_buf())
}

impl Prefetched {
    /// Starts decoding `stream` on a new thread. An error ends the stream after it is delivered;
    /// dropping the consumer stops the thread at its next batch.
    pub fn start(stream: EventStream) -> Prefetched {
        let source = stream.source().to_path_buf();
        let (tx, rx) = sync_channel::<Vec<Item>>(AHEAD);
        let (recycle, recycled) = sync_channel::<Vec<Item>>(AHEAD + 1);
        // The stream is handed over only once the thread runs, so a failed spawn keeps it.
        let (hand_tx, hand_rx) = sync_channel::<EventStream>(1);
        let spawned = std::thread::Builder::new()
            .name("replay-decode".into())
            .spawn(move || {
                if let Ok(stream) = hand_rx.recv() {
                    decode(stream, &tx, &recycled);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("replay: decoding on the cycle's thread ({e})");
            return Prefetched::Inline(stream);
        }
        match hand_tx.send(stream) {
            Ok(()) => Prefetched::Ahead {
                rx,
                ended: false,
                source,
                recycle,
                current: Vec::new().into_iter(),
            },
            Err(std::sync::mpsc::SendError(stream)) => Prefetched::Inline(stream),
        }
    }

    /// The next batch of events not yet read (as events or batches); `None` at the end.
    pub fn batch(&mut self) -> Option<Batch> {
        match self {
            Prefetched::Inline(stream) => {
                let (batch, _) = next_batch(stream);
                (!batch.is_empty()).then_some(Batch::Owned(batch))
            }
            Prefetched::Ahead {
                rx,
                ended,
                source,
                current,
                ..
            } => {
                if current.len() > 0 {
                    return Some(Batch::Owned(current.collect()));
                }
                Some(match receive(rx, ended, source, |b| b.len())? {
                    Ok(batch) => Batch::Owned(batch),
                    Err(e) => Batch::Owned(vec![Err(e)]),
                })
            }
            Prefetched::Shared {
                rx,
                ended,
                source,
                current,
                next,
                ..
            } => {
                if *next < current.len() {
                    let rest = current[*next..].to_vec();
                    *next = current.len();
                    return Some(Batch::Owned(rest));
                }
                Some(match receive(rx, ended, source, |b| b.len())? {
                    Ok(batch) => Batch::Shared(batch),
                    Err(e) => Batch::Owned(vec![Err(e)]),
                })
            }
        }
    }

    /// Hands a read batch back, so its memory is used for a later one. Its events are dropped
    /// by the decoder, which made them (their symbols' reference counts stay on its core).
    pub fn give_back(&mut self, batch: Batch) {
        if let (Prefetched::Ahead { recycle, .. }, Batch::Owned(v)) = (self, batch) {
            let _ = recycle.try_send(v);
        }
    }
}

/// This consumer's copy of the decoder's `symbol`.
fn own_copy(own: &mut Vec<(Symbol, Symbol)>, symbol: &Symbol) -> Symbol {
    if let Some((_, mine)) = own.iter().find(|(theirs, _)| theirs.shares_text(symbol)) {
        return mine.clone();
    }
    let mine = symbol.unshared();
    own.push((symbol.clone(), mine.clone()));
    mine
}

impl Iterator for Prefetched {
    type Item = Item;
    fn next(&mut self) -> Option<Item> {
        match self {
            Prefetched::Inline(stream) => stream.next(),
            Prefetched::Ahead {
                rx,
                ended,
                source,
                current,
                ..
            } => loop {
                if let Some(item) = current.next() {
                    return Some(item);
                }
                match receive(rx, ended, source, |b| b.len())? {
                    Ok(batch) => *current = batch.into_iter(),
                    Err(e) => return Some(Err(e)),
                }
            },
            Prefetched::Shared {
                rx,
                ended,
                source,
                current,
                next,
                own,
            } => loop {
                if let Some(item) = current.get(*next) {
                    *next += 1;
                    return Some(match item {
                        Ok(ev) => Ok(ReplayEvent {
                            ts_ms: ev.ts_ms,
                            symbol: own_copy(own, &ev.symbol),
                            kind: ev.kind.clone(),
                        }),
                        Err(e) => Err(e.clone()),
                    });
                }
                match receive(rx, ended, source, |b| b.len())? {
                    Ok(batch) => *current = batch,
                    Err(e) => return Some(Err(e)),
                }
                *next = 0;
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exchange::replay::dataset::open_dataset;
    use std::path::PathBuf;

    #[test]
    fn the_same_events_in_the_same_order_as_reading_inline() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/replay/sample");
        let ds = open_dataset(&dir).unwrap_or_else(|e| panic!("{e}"));
        let inline: Vec<Item> = ds.events().unwrap_or_else(|e| panic!("{e}")).collect();
        let ahead: Vec<Item> =
            Prefetched::start(ds.events().unwrap_or_else(|e| panic!("{e}"))).collect();
        assert!(inline.len() > 2 * BATCH, "the sample spans several batches");
        assert_eq!(inline, ahead);
    }

    #[test]
    fn a_shared_feed_gives_every_consumer_every_event_in_order() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/replay/sample");
        let ds = open_dataset(&dir).unwrap_or_else(|e| panic!("{e}"));
        let inline: Vec<Item> = ds.events().unwrap_or_else(|e| panic!("{e}")).collect();
        let feeds = ReplayFeed::open(&dir, 2).unwrap_or_else(|e| panic!("{e}"));
        let other = dir.join("..").join("elsewhere");
        assert!(
            feeds[0].take_for(&other).is_none(),
            "another dataset's replay"
        );
        let mut a = feeds[0]
            .take_for(&dir)
            .unwrap_or_else(|| panic!("first take"));
        assert!(feeds[0].take_for(&dir).is_none(), "taken once");
        let b = feeds[1]
            .take_for(&dir)
            .unwrap_or_else(|| panic!("second feed"));
        // The consumers run on separate threads at their own pace.
        let first: Vec<Item> = a.by_ref().take(10).collect();
        let reader = std::thread::spawn(move || b.collect::<Vec<Item>>());
        let mut all_a = first;
        all_a.extend(a);
        let all_b = reader.join().unwrap_or_else(|_| panic!("reader panicked"));
        assert_eq!(all_a, inline);
        assert_eq!(all_b, inline);
    }

    #[test]
    fn a_decoder_that_stops_without_the_end_batch_is_an_error_not_the_end() {
        let source = Path::new("data/x");
        let (tx, rx) = sync_channel::<Vec<Item>>(2);
        let mut ended = false;
        tx.send(Vec::new()).unwrap_or_else(|e| panic!("{e}"));
        drop(tx);
        assert!(
            receive(&rx, &mut ended, source, Vec::len).is_none(),
            "the end batch"
        );
        assert!(
            receive(&rx, &mut ended, source, Vec::len).is_none(),
            "and after it"
        );

        let (tx, rx) = sync_channel::<Vec<Item>>(2);
        let mut ended = false;
        drop(tx);
        let err = match receive(&rx, &mut ended, source, Vec::len) {
            Some(Err(e)) => e.to_string(),
            _ => panic!("a closed channel without the end batch must be an error"),
        };
        assert!(err.contains("data/x: the decoding thread stopped"), "{err}");
        assert!(
            receive(&rx, &mut ended, source, Vec::len).is_none(),
            "reported once"
        );
    }

    #[test]
    fn a_shared_feed_serves_the_rest_when_one_consumer_leaves() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/replay/sample");
        let total = open_dataset(&dir)
            .unwrap_or_else(|e| panic!("{e}"))
            .events()
            .unwrap_or_else(|e| panic!("{e}"))
            .count();
        let feeds = ReplayFeed::open(&dir, 2).unwrap_or_else(|e| panic!("{e}"));
        drop(feeds[0].take_for(&dir));
        let b = feeds[1]
            .take_for(&dir)
            .unwrap_or_else(|| panic!("second feed"));
        assert_eq!(b.count(), total);
    }
}
