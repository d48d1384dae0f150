//! ICE settings applied to each webrtcbin: UPnP off (libnice would multicast SSDP discovery to the
//! LAN), no ICE-TCP, the media port range, STUN/TURN, and the only local addresses to gather on.
//!
//! Two things here need raw GObject calls, hence the one `unsafe` block in the crate:
//! - webrtcbin's `ice-agent` is still floating in GStreamer 1.22, so reading the property through the
//!   bindings (which ref_sink) would steal webrtcbin's only reference and destroy the agent when ours
//!   drops. We sink the floating reference on webrtcbin's behalf first.
//! - `nice_agent_add_local_address` has no GStreamer-level API; it is the only way to restrict
//!   gathering to chosen addresses (and to use loopback at all: libnice skips it by default).
#![allow(unsafe_code)]

use crate::config::IceConfig;
use gst::glib;
use gst::glib::translate::{FromGlibPtrFull, ToGlibPtr};
use gst::prelude::*;
use std::ffi::{c_char, c_int, c_void, CString};
use std::net::IpAddr;

#[link(name = "nice")]
unsafe extern "C" {
    fn nice_address_new() -> *mut c_void;
    fn nice_address_free(addr: *mut c_void);
    fn nice_address_set_from_string(addr: *mut c_void, s: *const c_char) -> c_int;
    fn nice_agent_add_local_address(
        agent: *mut glib::gobject_ffi::GObject,
        addr: *const c_void,
    ) -> c_int;
}

/// Takes webrtcbin's ICE object, sinking its floating reference so that webrtcbin keeps one.
fn ice_object(webrtcbin: &gst::Element) -> Option<glib::Object> {
    let name = CString::new("ice-agent").ok()?;
    let mut ptr: *mut glib::gobject_ffi::GObject = std::ptr::null_mut();
    // SAFETY: g_object_get with a valid object, a NUL-terminated property name of object type and a
    // pointer-sized out location, terminated by NULL. It returns a new (full) reference or NULL.
    unsafe {
        glib::gobject_ffi::g_object_get(
            webrtcbin.as_ptr() as *mut glib::gobject_ffi::GObject,
            name.as_ptr(),
            &mut ptr as *mut *mut glib::gobject_ffi::GObject,
            std::ptr::null::<c_char>(),
        );
        if ptr.is_null() {
            return None;
        }
        if glib::gobject_ffi::g_object_is_floating(ptr as *mut _) != 0 {
            // Turns webrtcbin's floating reference into a normal one (no count change).
            glib::gobject_ffi::g_object_ref_sink(ptr as *mut _);
        }
        Some(glib::Object::from_glib_full(ptr))
    }
}

fn add_local_address(agent: &glib::Object, ip: IpAddr) -> bool {
    let Ok(text) = CString::new(ip.to_string()) else {
        return false;
    };
    // SAFETY: nice_address_new allocates an address we free below; set_from_string reads a
    // NUL-terminated string; add_local_address copies the address and takes a NiceAgent, which
    // `agent` is (it is webrtcbin's `ice-agent.agent`).
    unsafe {
        let addr = nice_address_new();
        if addr.is_null() {
            return false;
        }
        let ok = nice_address_set_from_string(addr, text.as_ptr()) != 0
            && nice_agent_add_local_address(agent.to_glib_none().0, addr) != 0;
        nice_address_free(addr);
        ok
    }
}

/// Applies the ICE configuration to a fresh webrtcbin, before any negotiation.
pub fn configure(webrtcbin: &gst::Element, cfg: &IceConfig) {
    if let Some(s) = cfg.stun_servers.first() {
        webrtcbin.set_property("stun-server", s);
    }
    for t in &cfg.turn_servers {
        let _ = webrtcbin.emit_by_name::<bool>("add-turn-server", &[t]);
    }
    let Some(ice) = ice_object(webrtcbin) else {
        tracing::warn!("webrtcbin has no ICE agent; ICE settings not applied");
        return;
    };
    if ice.has_property("min-rtp-port") {
        ice.set_property("min-rtp-port", u32::from(cfg.port_min));
        ice.set_property("max-rtp-port", u32::from(cfg.port_max));
    }
    if !ice.has_property("agent") {
        return;
    }
    let agent = ice.property::<glib::Object>("agent");
    agent.set_property("upnp", false);
    agent.set_property("ice-tcp", false);
    for ip in &cfg.addresses {
        if !add_local_address(&agent, *ip) {
            tracing::warn!(%ip, "could not restrict ICE to this address");
        }
    }
}
