//! Locking that survives a panic elsewhere: a poisoned mutex still holds consistent data for
//! everything the server keeps in one (tables and small states updated in a single step), so a
//! panicking thread must not take every later request down with it.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`, taking it over if a panicking thread poisoned it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}
