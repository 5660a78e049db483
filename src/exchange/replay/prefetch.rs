//! Decoding a dataset on a second thread: gunzip, CSV and decimal parsing run beside the cycle
//! instead of inside it. Events arrive in order, in batches through a bounded channel, so memory
//! stays flat whatever the dataset's size.

use super::dataset::{DatasetError, EventStream, ReplayEvent};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Events per batch: large enough that the channel costs nothing per event.
const BATCH: usize = 1024;
/// Batches decoded ahead of the consumer.
const AHEAD: usize = 8;

type Item = Result<ReplayEvent, DatasetError>;

/// The events of an [`EventStream`], decoded ahead on their own thread (or inline when no
/// thread can be started).
pub enum Prefetched {
    Ahead {
        rx: Receiver<Vec<Item>>,
        current: std::vec::IntoIter<Item>,
    },
    Inline(EventStream),
}

fn decode(mut stream: EventStream, tx: &SyncSender<Vec<Item>>) {
    loop {
        let mut batch = Vec::with_capacity(BATCH);
        let mut failed = false;
        for item in stream.by_ref() {
            failed = item.is_err();
            batch.push(item);
            if failed || batch.len() == BATCH {
                break;
            }
        }
        let last = failed || batch.len() < BATCH;
        if batch.is_empty() || tx.send(batch).is_err() || last {
            return;
        }
    }
}

impl Prefetched {
    /// Starts decoding `stream` on a new thread. An error ends the stream after it is delivered;
    /// dropping the consumer stops the thread at its next batch.
    pub fn start(stream: EventStream) -> Prefetched {
        let (tx, rx) = sync_channel::<Vec<Item>>(AHEAD);
        // The stream is handed over only once the thread runs, so a failed spawn keeps it.
        let (hand_tx, hand_rx) = sync_channel::<EventStream>(1);
        let spawned = std::thread::Builder::new()
            .name("replay-decode".into())
            .spawn(move || {
                if let Ok(stream) = hand_rx.recv() {
                    decode(stream, &tx);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("replay: decoding on the cycle's thread ({e})");
            return Prefetched::Inline(stream);
        }
        match hand_tx.send(stream) {
            Ok(()) => Prefetched::Ahead {
                rx,
                current: Vec::new().into_iter(),
            },
            Err(std::sync::mpsc::SendError(stream)) => Prefetched::Inline(stream),
        }
    }
}

impl Iterator for Prefetched {
    type Item = Item;
    fn next(&mut self) -> Option<Item> {
        match self {
            Prefetched::Inline(stream) => stream.next(),
            Prefetched::Ahead { rx, current } => loop {
                if let Some(item) = current.next() {
                    return Some(item);
                }
                *current = rx.recv().ok()?.into_iter();
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
}
