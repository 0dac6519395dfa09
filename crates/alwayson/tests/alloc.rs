//! The view decoder allocates nothing: a counting allocator (this thread's allocations only)
//! around `view::decode` and the lazy table readers.

#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;

use alwayson::{Limits, view};

#[path = "../benches/common/mod.rs"]
mod common;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, counting this thread's allocations and reallocations.
struct Counting;

// SAFETY: every call is passed unchanged to the system allocator; the counter is a
// thread-local `Cell` with a constant initialiser, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn view_decode_allocates_nothing() {
    let limits = Limits::default();
    let push = common::property_update().to_bytes().unwrap().to_vec();
    let table = common::big_table().to_bytes().unwrap().to_vec();
    let numbers = common::number_table().to_bytes().unwrap().to_vec();
    for bytes in [&push, &table, &numbers] {
        let n = allocations(|| drop(black_box(view::decode(black_box(bytes), &limits).unwrap())));
        assert_eq!(n, 0, "view::decode of a {}-byte message", bytes.len());
    }
    // Reading every cell of a table without nested tables allocates nothing either.
    for bytes in [&table, &numbers] {
        let v = view::decode(bytes, &limits).unwrap();
        let n = allocations(|| {
            black_box(common::walk(&v));
        });
        assert_eq!(n, 0, "reading every cell");
    }
    // A property push read out: one allocation, the returned vector.
    let v = view::decode(&push, &limits).unwrap();
    let view::BodyView::Request(r) = &v.body else {
        panic!("a request")
    };
    let params = r.params.as_ref().unwrap();
    let n = allocations(|| {
        let values = params.property_values().unwrap();
        assert_eq!(values.len(), 5);
        black_box(values);
    });
    assert_eq!(n, 1, "property_values");
    // The owned decoder, for comparison, allocates per string, row and nested value.
    let n = allocations(|| {
        drop(black_box(
            alwayson::Message::decode(&push, &limits).unwrap(),
        ))
    });
    assert!(n > 30, "owned decode made {n} allocations");
}
