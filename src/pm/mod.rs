//! Path managers (placeholder, filled in below).
