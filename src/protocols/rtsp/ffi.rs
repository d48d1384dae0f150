//! What gst-rtsp-server's Rust bindings leave out, in one place: a mount-points subclass whose
//! path lookup lets the server act on an ANNOUNCE before gst-rtsp-server looks for its media
//! (its `pre-announce-request` signal comes only after that), and readers of a request's method,
//! body and peer address.

use gst_rtsp_server::glib;
use gst_rtsp_server::glib::subclass::prelude::*;
use gst_rtsp_server::glib::translate::ToGlibPtr;
use gst_rtsp_server::gst_rtsp::rtsp_message::RTSPMessage;
use gst_rtsp_server::gst_rtsp::RTSPUrl;
use gst_rtsp_server::subclass::prelude::*;
use gst_rtsp_server::{RTSPClient, RTSPContext, RTSPMountPoints};
use std::net::IpAddr;
use std::sync::OnceLock;

/// Called with the request being handled whenever a path is looked up; what it returns (a mount
/// path) replaces the URL's own path, `None` keeps it.
pub type PathHook = Box<dyn Fn(&RTSPContext, &RTSPUrl) -> Option<String> + Send + Sync>;

#[allow(unsafe_code)]
mod imp {
    use super::*;

    #[derive(Default)]
    pub struct Mounts {
        pub hook: OnceLock<PathHook>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for Mounts {
        const NAME: &'static str = "StreamgateRtspMounts";
        type Type = super::Mounts;
        type ParentType = RTSPMountPoints;
    }

    impl ObjectImpl for Mounts {}

    impl RTSPMountPointsImpl for Mounts {
        fn make_path(&self, url: &RTSPUrl) -> Option<glib::GString> {
            if let Some(hook) = self.hook.get() {
                if let Some(Some(p)) = RTSPContext::with_current_context(|ctx| hook(ctx, url)) {
                    return Some(p.into());
                }
            }
            self.parent_make_path(url)
        }
    }
}

glib::wrapper! {
    /// Mount points with a [`PathHook`].
    pub struct Mounts(ObjectSubclass<imp::Mounts>) @extends RTSPMountPoints;
}

impl Mounts {
    /// Mount points calling `hook` on every path lookup.
    pub fn new(hook: PathHook) -> Self {
        let m: Self = glib::Object::new();
        let _ = m.imp().hook.set(hook);
        m
    }
}

/// The requests the server acts on before gst-rtsp-server does.
pub enum Method {
    /// DESCRIBE.
    Describe,
    /// ANNOUNCE.
    Announce,
    /// Any other.
    Other,
}

/// A request's method (`None` for a response).
#[allow(unsafe_code)]
pub fn method(msg: &RTSPMessage) -> Option<Method> {
    use gst_rtsp_server::gst_rtsp::ffi;
    let mut method: ffi::GstRTSPMethod = 0;
    // SAFETY: the message is alive for this call; only the method is written (the other out
    // parameters may be null).
    let r = unsafe {
        ffi::gst_rtsp_message_parse_request(
            ToGlibPtr::<*const ffi::GstRTSPMessage>::to_glib_none(msg).0 as *mut _,
            &mut method,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if r != ffi::GST_RTSP_OK {
        return None;
    }
    Some(match method {
        ffi::GST_RTSP_ANNOUNCE => Method::Announce,
        ffi::GST_RTSP_DESCRIBE => Method::Describe,
        _ => Method::Other,
    })
}

/// The client's address (the bindings leave `gst_rtsp_client_get_connection` out).
#[allow(unsafe_code)]
pub fn peer_ip(client: &RTSPClient) -> Option<IpAddr> {
    // SAFETY: the client outlives this call (we hold a reference); the connection it returns is
    // owned by the client and not freed while we read its address, which is copied at once.
    unsafe {
        let conn = gst_rtsp_server::ffi::gst_rtsp_client_get_connection(client.to_glib_none().0);
        if conn.is_null() {
            return None;
        }
        let ip = gst_rtsp_server::gst_rtsp::ffi::gst_rtsp_connection_get_ip(conn);
        if ip.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr(ip).to_str().ok()?.parse().ok()
    }
}

/// A request's body, copied (the bindings leave `gst_rtsp_message_get_body` out).
#[allow(unsafe_code)]
pub fn body(msg: &RTSPMessage) -> Option<Vec<u8>> {
    let mut data: *mut u8 = std::ptr::null_mut();
    let mut size: u32 = 0;
    // SAFETY: the message is alive for this call; the body pointer it hands out stays owned by
    // the message and is copied before we return.
    unsafe {
        let r = gst_rtsp_server::gst_rtsp::ffi::gst_rtsp_message_get_body(
            msg.to_glib_none().0,
            &mut data,
            &mut size,
        );
        if r != gst_rtsp_server::gst_rtsp::ffi::GST_RTSP_OK || data.is_null() {
            return None;
        }
        Some(std::slice::from_raw_parts(data, size as usize).to_vec())
    }
}
