//! Unit tests of the endpoint with simulated time.
