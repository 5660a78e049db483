//! Replay venue (placeholder while the dataset reader is written).
