pub mod fixtures;
pub mod sandbox;
