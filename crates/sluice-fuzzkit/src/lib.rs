//! The one harness of sluice's property and fuzz tests (issue 24, item 4), shared by the store,
//! engine, SNS and server test builds, so each crate's `fuzz` module holds only its properties.
//!
//! - [`run`]: a property for a bounded time (`SLUICE_FUZZ_MS` to fuzz longer by hand), failing
//!   when too few cases ran to mean anything. arbtest picks a new seed each run and prints it when
//!   a property fails.
//! - [`LargestAllocation`]: a test binary's allocator (declare it with `#[global_allocator]`) that
//!   records the largest single allocation per thread, so a property can check that a decoder of
//!   untrusted bytes allocates in proportion to its input ([`largest_allocation_during`]).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

pub use arbitrary::{Result, Unstructured};

/// Fewer cases than this in a property's budget means the machine was too busy for the run to
/// say anything: a failure, not a silent pass.
const MIN_CASES: u32 = 50;

/// Runs `property` for `budget_ms` milliseconds (or `SLUICE_FUZZ_MS`) on arbitrary inputs of at
/// most `size_max` bytes (None: arbtest's default), and returns how many cases ran.
pub fn run(
    budget_ms: u64,
    size_max: Option<u32>,
    mut property: impl FnMut(&mut Unstructured<'_>) -> Result<()>,
) -> u32 {
    let budget = std::env::var("SLUICE_FUZZ_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(budget_ms);
    let mut cases = 0u32;
    let mut test = arbtest::arbtest(|u| {
        cases += 1;
        property(u)
    })
    .budget_ms(budget);
    if let Some(size_max) = size_max {
        test = test.size_max(size_max);
    }
    test.run();
    assert!(cases >= MIN_CASES, "only {cases} cases ran in {budget} ms");
    cases
}

/// The system allocator, plus a per-thread record of the largest single allocation.
pub struct LargestAllocation;

thread_local! {
    /// Largest allocation on this thread since the last [`largest_allocation_during`] began.
    /// Const-initialised and without a destructor: touching it never allocates.
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

#[allow(unsafe_code)]
// SAFETY: every call is passed through to `System` unchanged; the only addition is a store to a
// thread-local Cell, which neither allocates nor unwinds.
unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(layout.size())));
        // SAFETY: the caller's contract for `alloc` is the same as System's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` (through `alloc` above) with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = LARGEST.try_with(|l| l.set(l.get().max(new_size)));
        // SAFETY: as for `dealloc`; the caller guarantees `new_size` is valid for `layout`'s alignment.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs `f` and returns its result with the largest single allocation it made on this thread
/// (meaningful only in a test binary whose global allocator is [`LargestAllocation`]).
pub fn largest_allocation_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    let out = f();
    (out, LARGEST.with(Cell::get))
}
