//! `stp`: the ShareThePower command-line tool.

fn main() {}
