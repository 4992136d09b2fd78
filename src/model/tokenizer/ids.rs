//! The special tokens a vocabulary names by role (BOS, EOS, end of turn,
//! the fill-in-the-middle tokens …), as slots of one array: what the GGUF
//! loader reads from metadata and the by-text search fills in.

/// Special token ids, indexed by the constants below, in `load.rs`'s key order.
#[derive(Default)]
pub(super) struct Ids(pub [Option<u32>; 14]);

pub(super) const BOS: usize = 0;
pub(super) const EOS: usize = 1;
pub(super) const EOT: usize = 2;
pub(super) const EOM: usize = 3;
pub(super) const UNK: usize = 4;
pub(super) const PAD: usize = 6;
pub(super) const FIM_PRE: usize = 8;
pub(super) const FIM_SUF: usize = 9;
pub(super) const FIM_MID: usize = 10;
pub(super) const FIM_PAD: usize = 11;
pub(super) const FIM_REP: usize = 12;
pub(super) const FIM_SEP: usize = 13;
