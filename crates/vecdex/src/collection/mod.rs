pub mod columns;
pub mod filter;
