//! The calls in progress on each thread, and the handles (`rg_call *`) that name them.
//!
//! A handle is not a pointer: it is a slot index and a generation, checked on every host call against
//! a per-thread slab of the exchanges currently serving. A handle used after its `handle` returned, on
//! another thread, or made up gets `RG_E_STATE` — never freed memory. The asynchronous ABI (a call
//! completed after `handle` returned) will keep an exchange registered past `handle`, in this slab.
//!
//! Not here: what a host call does (`host`), the exchange itself (`worker::connection`).

use super::host::CallSlot;
use rustgun_abi::RgCall;
use std::cell::RefCell;
use std::marker::PhantomData;

/// One slot: the generation it was last registered with, and the exchange while it is live.
struct Slot {
    generation: usize,
    live: Option<*mut CallSlot<'static>>,
}

thread_local! {
    static SLAB: RefCell<Vec<Slot>> = const { RefCell::new(Vec::new()) };
}

/// Half of a handle's bits name the slot (plus one, so that no handle is null), half the generation.
const SHIFT: u32 = usize::BITS / 2;
const GENERATIONS: usize = (1 << SHIFT) - 1;

/// An exchange registered on this thread for as long as this lives (it holds the exchange's borrow):
/// dropping it makes the handle stale.
pub struct Registration<'a> {
    index: usize,
    handle: *mut RgCall,
    _slot: PhantomData<&'a mut ()>,
}

impl<'a> Registration<'a> {
    /// Registers `slot` on this thread until the registration is dropped.
    pub fn new(slot: &'a mut CallSlot<'_>) -> Registration<'a> {
        let slot: *mut CallSlot<'static> = (slot as *mut CallSlot<'_>).cast();
        SLAB.with_borrow_mut(|slab| {
            let index = match slab.iter().position(|s| s.live.is_none()) {
                Some(free) => free,
                None => {
                    slab.push(Slot { generation: 0, live: None });
                    slab.len() - 1
                }
            };
            let entry = &mut slab[index];
            entry.generation = (entry.generation + 1) & GENERATIONS;
            entry.live = Some(slot);
            let handle = ((index + 1) << SHIFT) | entry.generation;
            Registration { index, handle: std::ptr::without_provenance_mut(handle), _slot: PhantomData }
        })
    }

    /// The handle the app gets in `rg_request.call`.
    pub fn handle(&self) -> *mut RgCall {
        self.handle
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        SLAB.with_borrow_mut(|slab| slab[self.index].live = None);
    }
}

/// The exchange behind `call`, if it names a call live on this thread.
pub(super) fn lookup(call: *mut RgCall) -> Option<*mut CallSlot<'static>> {
    let bits = call.addr();
    let (index, generation) = ((bits >> SHIFT).checked_sub(1)?, bits & GENERATIONS);
    SLAB.with_borrow(|slab| {
        let entry = slab.get(index)?;
        if entry.generation == generation { entry.live } else { None }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Exchange;
    use rustgun_abi::{RgBodySource, RgHeader};

    struct Nothing;

    impl Exchange for Nothing {
        fn read_body(&mut self, _: &mut [u8]) -> Result<usize, i32> {
            Ok(0)
        }
        fn start_response(&mut self, _: u32, _: &[u8], _: &[RgHeader], _: bool) -> Result<(), i32> {
            Ok(())
        }
        fn write(&mut self, _: &[u8]) -> Result<(), i32> {
            Ok(())
        }
        fn set_body(&mut self, _: RgBodySource) -> Result<(), i32> {
            Ok(())
        }
        fn environ(&mut self) -> &[RgHeader] {
            &[]
        }
        fn send_file(&mut self, _: std::os::fd::BorrowedFd<'_>, _: u64, _: u64) -> Result<u64, i32> {
            Ok(0)
        }
    }

    #[test]
    fn a_handle_names_its_call_only_while_it_is_registered_and_never_again() {
        let mut exchange = Nothing;
        let mut slot: CallSlot<'_> = &mut exchange;
        let stale = {
            let first = Registration::new(&mut slot);
            assert!(!first.handle().is_null());
            assert!(lookup(first.handle()).is_some());
            first.handle()
        };
        assert!(lookup(stale).is_none(), "a handle dies with its call");
        let second = Registration::new(&mut slot);
        assert_ne!(second.handle(), stale, "the slot is reused under a new generation");
        assert!(lookup(stale).is_none() && lookup(second.handle()).is_some());
    }

    #[test]
    fn a_handle_means_nothing_on_another_thread_or_when_made_up() {
        let mut exchange = Nothing;
        let mut slot: CallSlot<'_> = &mut exchange;
        let live = Registration::new(&mut slot);
        let bits = live.handle().addr();
        let elsewhere = std::thread::spawn(move || lookup(std::ptr::without_provenance_mut(bits)).is_none());
        assert!(elsewhere.join().unwrap());
        for made_up in [0usize, 1, bits + 1, usize::MAX] {
            assert!(lookup(std::ptr::without_provenance_mut(made_up)).is_none(), "{made_up:#x}");
        }
    }
}
