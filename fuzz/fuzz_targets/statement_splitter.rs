//! The script splitter of `-c`, `-f` and `\i`: any text splits, and the pieces come in the
//! order and on the lines of the text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use runql_fuzz::script::{Piece, split};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let lines = text.matches('\n').count() + 1;
    let mut last = 1;
    for piece in split(text) {
        let line = piece.line();
        assert!(line >= last && line <= lines, "line {line} after {last} of {lines}");
        last = line;
        let (Piece::Sql { text: body, .. } | Piece::Command { text: body, .. }) = &piece;
        assert!(!body.trim().is_empty());
    }
});
