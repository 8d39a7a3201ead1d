//! The server-hooks table a bridge exports (`rustgun_hooks`, [`RgHooks`]): the calls from the host
//! into a configuration file's hooks, each behind the same panic guard as the app's entry points.
//!
//! Not here: what a hook does (the bridge's, e.g. `rustgun-python`'s gunicorn.conf.py), nor when the
//! server calls one (`rustgun::app::hooks`).

use super::{enter, guard, run_setup};
use crate::InitContext;
use crate::log::{Level, log};
use rustgun_abi::{RG_E_PANIC, RG_ERROR, RG_OK, RgHookCtx, RgHost, RgInit};

/// `RgHooks::load`: runs `f` with the configuration file and the bridge's arguments.
///
/// # Safety
/// The arguments must be what the server passes to `RgHooks::load` (null is reported, not used).
#[doc(hidden)]
pub unsafe fn hooks_load_with<F: Fn(&InitContext) -> Result<(), String>>(
    f: &F,
    host: *const RgHost,
    init: *mut RgInit,
) -> i32 {
    guard(RG_E_PANIC, || {
        // SAFETY: the caller's contract is ours.
        let (init, ctx) = match unsafe { enter("hooks.load", host, init) } {
            Ok(entered) => entered,
            Err(code) => return code,
        };
        run_setup(init, "hooks.load", || f(&ctx))
    })
}

/// `RgHooks::defined`.
#[doc(hidden)]
pub fn hooks_defined_with<F: Fn() -> u64>(f: &F) -> u64 {
    guard(0, f)
}

/// `RgHooks::call`: runs `f` for the moment `ctx` describes; `RG_ERROR` when it says it failed (it
/// logged why).
///
/// # Safety
/// `ctx` must be what the server passes to `RgHooks::call` (null is reported, not used).
#[doc(hidden)]
pub unsafe fn hooks_call_with<F: Fn(&RgHookCtx) -> bool>(f: &F, ctx: *const RgHookCtx) -> i32 {
    guard(RG_E_PANIC, || {
        // SAFETY: the server's context, valid for the call, or null.
        let Some(raw) = (unsafe { ctx.as_ref() }) else {
            log(Level::Error, "rustgun-sdk: hooks.call without a context");
            return RG_ERROR;
        };
        if (raw.size as usize) < size_of::<RgHookCtx>() {
            log(Level::Error, "rustgun-sdk: RgHookCtx is smaller than version 1's");
            return RG_ERROR;
        }
        if f(raw) { RG_OK } else { RG_ERROR }
    })
}

/// Exports the server-hooks table (`rustgun_hooks`): `export_hooks!(load, defined, call)` with
/// `load: Fn(&InitContext) -> Result<(), String>` (the file is the first argument),
/// `defined: Fn() -> u64` and `call: Fn(&RgHookCtx) -> bool` (`false`: the hook failed, and `call` logged
/// why).
#[macro_export]
macro_rules! export_hooks {
    ($load:expr, $defined:expr, $call:expr $(,)?) => {
        #[unsafe(no_mangle)]
        #[allow(non_upper_case_globals)]
        pub static rustgun_hooks: $crate::abi::RgHooks = {
            unsafe extern "C" fn __rustgun_hooks_load(
                host: *const $crate::abi::RgHost,
                init: *mut $crate::abi::RgInit,
            ) -> i32 {
                // SAFETY: the arguments come unchanged from the server, as `hooks_load_with` requires.
                unsafe { $crate::__private::hooks_load_with(&$load, host, init) }
            }
            unsafe extern "C" fn __rustgun_hooks_defined() -> u64 {
                $crate::__private::hooks_defined_with(&$defined)
            }
            unsafe extern "C" fn __rustgun_hooks_call(ctx: *const $crate::abi::RgHookCtx) -> i32 {
                // SAFETY: the context comes unchanged from the server, as `hooks_call_with` requires.
                unsafe { $crate::__private::hooks_call_with(&$call, ctx) }
            }
            $crate::abi::RgHooks {
                magic: $crate::abi::RG_MAGIC,
                version: $crate::abi::RG_HOOKS_VERSION,
                size: ::core::mem::size_of::<$crate::abi::RgHooks>() as u32,
                load: __rustgun_hooks_load,
                defined: __rustgun_hooks_defined,
                call: __rustgun_hooks_call,
            }
        };
    };
}
