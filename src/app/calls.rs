//! The calls in progress on each thread, and the handles (`rg_call *`) that name them.
//!
//! A handle is not a pointer: it is a slot index and a generation, checked on every host call against
//! a per-thread slab of the calls currently live. A handle used after its call ended, on another
//! thread, or made up gets `RG_E_STATE` — never freed memory.
//!
//! A call is live in one of two ways: during `handle`, its slot points at the exchange serving it
//! (borrowed for that long, [`Registration`]); after an app returned `RG_PENDING` (a WebSocket it
//! accepted, or an HTTP response it goes on with), the slot holds a weak reference to what the event
//! loop keeps of the call ([`Reserved::outlive`]), so the call ends as soon as the loop drops it, or
//! when the app completes it.
//!
//! Not here: what a host call does (`host`), the exchange and the socket themselves (`worker`).

use super::host::{CallSlot, Socket};
use rustgun_abi::RgCall;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::{Rc, Weak};

/// What a live slot names.
enum Live {
    /// The exchange serving `handle` right now.
    Exchange(*mut CallSlot<'static>),
    /// `handle` returned; whether the call goes on is being decided.
    Reserved,
    /// A call that outlived `handle`: live while the event loop keeps the socket.
    Socket(Weak<RefCell<dyn Socket>>),
}

/// One slot: the generation it was last registered with, and the call while it is live.
struct Slot {
    generation: usize,
    live: Option<Live>,
}

impl Slot {
    fn is_free(&self) -> bool {
        match &self.live {
            None => true,
            Some(Live::Exchange(_) | Live::Reserved) => false,
            Some(Live::Socket(socket)) => socket.strong_count() == 0,
        }
    }
}

/// What a handle names: the exchange during `handle`, or the socket of a call that outlived it.
pub(super) enum Target {
    Exchange(*mut CallSlot<'static>),
    Socket(Rc<RefCell<dyn Socket>>),
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
            let index = match slab.iter().position(Slot::is_free) {
                Some(free) => free,
                None => {
                    slab.push(Slot { generation: 0, live: None });
                    slab.len() - 1
                }
            };
            let entry = &mut slab[index];
            entry.generation = (entry.generation + 1) & GENERATIONS;
            entry.live = Some(Live::Exchange(slot));
            let handle = ((index + 1) << SHIFT) | entry.generation;
            Registration { index, handle: std::ptr::without_provenance_mut(handle), _slot: PhantomData }
        })
    }

    /// The handle the app gets in `rg_request.call`.
    pub fn handle(&self) -> *mut RgCall {
        self.handle
    }

    /// Ends the exchange's borrow once `handle` has returned but keeps the slot (its handle names
    /// nothing meanwhile), so that the call may go on under the same handle ([`Reserved::outlive`]).
    pub fn keep(self) -> Reserved {
        let reserved = Reserved { index: self.index, handle: self.handle };
        SLAB.with_borrow_mut(|slab| slab[self.index].live = Some(Live::Reserved));
        std::mem::forget(self);
        reserved
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        SLAB.with_borrow_mut(|slab| slab[self.index].live = None);
    }
}

/// A slot kept past `handle` ([`Registration::keep`]); freed when dropped, unless the call goes on.
pub struct Reserved {
    index: usize,
    handle: *mut RgCall,
}

impl Reserved {
    /// The handle the app was given.
    pub fn handle(&self) -> *mut RgCall {
        self.handle
    }

    /// The call goes on after `handle` (the app returned `RG_PENDING`): the same handle now names
    /// `socket`, for as long as the event loop keeps it alive or until [`end`].
    pub fn outlive(self, socket: &Rc<RefCell<dyn Socket>>) {
        let weak = Rc::downgrade(socket);
        SLAB.with_borrow_mut(|slab| slab[self.index].live = Some(Live::Socket(weak)));
        std::mem::forget(self);
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        SLAB.with_borrow_mut(|slab| slab[self.index].live = None);
    }
}

/// Splits a handle into its slot index and generation.
fn split(call: *mut RgCall) -> Option<(usize, usize)> {
    let bits = call.addr();
    Some(((bits >> SHIFT).checked_sub(1)?, bits & GENERATIONS))
}

/// What `call` names, if it is a call live on this thread.
pub(super) fn lookup(call: *mut RgCall) -> Option<Target> {
    let (index, generation) = split(call)?;
    SLAB.with_borrow(|slab| {
        let entry = slab.get(index).filter(|e| e.generation == generation)?;
        match entry.live.as_ref()? {
            Live::Exchange(exchange) => Some(Target::Exchange(*exchange)),
            Live::Reserved => None,
            Live::Socket(socket) => socket.upgrade().map(Target::Socket),
        }
    })
}

/// A call that outlived `handle` goes on as `socket` under the same handle (a pending request whose
/// app accepted its WebSocket).
pub fn rebind(call: *mut RgCall, socket: &Rc<RefCell<dyn Socket>>) {
    let Some((index, generation)) = split(call) else { return };
    SLAB.with_borrow_mut(|slab| {
        if let Some(entry) = slab.get_mut(index).filter(|e| e.generation == generation)
            && matches!(entry.live, Some(Live::Socket(_)))
        {
            entry.live = Some(Live::Socket(Rc::downgrade(socket)));
        }
    });
}

/// Ends a call that outlived `handle` (`complete`, or its last event): its handle is stale from now
/// on, even while the event loop still closes its socket.
pub fn end(call: *mut RgCall) {
    let Some((index, generation)) = split(call) else { return };
    SLAB.with_borrow_mut(|slab| {
        if let Some(entry) = slab.get_mut(index).filter(|e| e.generation == generation)
            && matches!(entry.live, Some(Live::Socket(_)))
        {
            entry.live = None;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::Exchange;

    struct Nothing;

    impl Exchange for Nothing {}

    #[test]
    fn a_handle_names_its_call_only_while_it_is_registered_and_never_again() {
        let mut exchange = Nothing;
        let mut slot: CallSlot<'_> = &mut exchange;
        let stale = {
            let first = Registration::new(&mut slot);
            assert!(!first.handle().is_null());
            assert!(matches!(lookup(first.handle()), Some(Target::Exchange(_))));
            first.handle()
        };
        assert!(lookup(stale).is_none(), "a handle dies with its call");
        let second = Registration::new(&mut slot);
        assert_ne!(second.handle(), stale, "the slot is reused under a new generation");
        assert!(lookup(stale).is_none() && lookup(second.handle()).is_some());
    }

    struct Quiet;

    impl Exchange for Quiet {}

    impl Socket for Quiet {
        fn end(&mut self, _: i32) {}
    }

    #[test]
    fn a_call_that_outlives_handle_keeps_its_handle_until_its_socket_goes_or_it_ends() {
        let mut exchange = Nothing;
        let mut slot: CallSlot<'_> = &mut exchange;
        let socket: Rc<RefCell<dyn Socket>> = Rc::new(RefCell::new(Quiet));
        let first = Registration::new(&mut slot).keep();
        let handle = first.handle();
        assert!(lookup(handle).is_none(), "a kept slot names nothing until the call goes on");
        first.outlive(&socket);
        assert!(matches!(lookup(handle), Some(Target::Socket(_))), "the same handle names the socket");
        drop(socket);
        assert!(lookup(handle).is_none(), "the call ends with its socket");
        let socket: Rc<RefCell<dyn Socket>> = Rc::new(RefCell::new(Quiet));
        let second = Registration::new(&mut slot).keep();
        let handle = second.handle();
        second.outlive(&socket);
        end(handle);
        assert!(lookup(handle).is_none(), "complete ends the call while the socket still closes");
        end(handle);
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
