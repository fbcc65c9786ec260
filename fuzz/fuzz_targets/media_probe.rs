//! Uploaded images (`duet_image`), as the server's media endpoint reads them: `probe` on the file
//! streamed in small reads, with the server's default pixel cap; `Budget::charge` with the default
//! budget; then, for images small enough to stay fast, `process`, which must keep to the header (the
//! image it decodes has the header's dimensions, its renditions the sizes `RenditionKind::fit` gives) and
//! to the charge: the memory it holds at its peak, counted by this target's allocator, is at most what
//! was charged.

#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};

use duet_core::media::{MediaLimits, RenditionKind};
use duet_image::{Budget, MAX_ASPECT, probe, process};
use libfuzzer_sys::fuzz_target;

/// The server's default pixel cap (`DEFAULT_MAX_IMAGE_PIXELS`).
const MAX_PIXELS: u64 = 25_000_000;
/// Images rendered here: at most this many pixels, so that each input takes milliseconds.
const RENDERED_PIXELS: u64 = 256 * 256;

fuzz_target!(|data: &[u8]| {
    let header = match probe(Trickle(data), MAX_PIXELS) {
        Ok(header) => header,
        Err(_) => return,
    };
    let (w, h) = (u64::from(header.width), u64::from(header.height));
    assert!(w > 0 && h > 0 && w * h <= MAX_PIXELS);
    assert!(w.max(h) <= w.min(h) * MAX_ASPECT);
    let budget = Budget::new(MAX_PIXELS, MediaLimits::default().image);
    let Ok(charge) = budget.charge(&header, data.len() as u64) else { return };
    assert!(charge <= budget.total);
    if w * h > RENDERED_PIXELS {
        return;
    }
    let before = CURRENT.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let processed = process(data, &header);
    let held = PEAK.load(Ordering::Relaxed).saturating_sub(before) as u64;
    assert!(held <= charge, "rendering held {held} bytes, more than its charge of {charge}");
    let Ok(p) = processed else { return };
    assert_eq!((p.width, p.height), (header.width, header.height));
    let kinds: Vec<_> = p.renditions.iter().map(|r| r.kind).collect();
    assert_eq!(kinds, [RenditionKind::Large, RenditionKind::Thumb]);
    for r in &p.renditions {
        assert_eq!((r.width, r.height), r.kind.fit(p.width, p.height));
        match &r.bytes {
            None => assert_eq!((r.width, r.height), (p.width, p.height)),
            Some(bytes) => assert!(!bytes.is_empty()),
        }
    }
});

/// A reader that hands out at most 7 bytes a call, as a stream from a file or socket may.
struct Trickle<'a>(&'a [u8]);

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.0.len()).min(7);
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, counting the bytes held and their peak.
struct Counting;

fn grew(size: usize) {
    let now = CURRENT.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is passed to the system allocator unchanged; only counters are updated besides.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is the system allocator's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Counted as the old and the new block held at once, as a copying realloc does.
            grew(new_size);
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;
