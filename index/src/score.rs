//! Similarity scoring (placeholder until written).
