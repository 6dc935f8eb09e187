//! A cache hint for memory the search is about to read (graph neighbours, posting runs).

/// Hint the CPU to load `items` into its caches (one hint per 64-byte line); a no-op elsewhere. Prefetches
/// never fault, and the slice keeps the addresses in bounds anyway.
#[inline(always)]
pub(crate) fn prefetch_lines<T>(items: &[T]) {
    #[cfg(target_arch = "x86_64")]
    for line in items.chunks((64 / std::mem::size_of::<T>().max(1)).max(1)) {
        // SAFETY: `_mm_prefetch` is SSE (x86-64 baseline) and only a hint; the pointer is in bounds.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                line.as_ptr().cast(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = items;
}
