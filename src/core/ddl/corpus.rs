//! The corpus: real-world DDL with the PostgreSQL and models expected.
