//! One monitor pass and one tainting pass.
