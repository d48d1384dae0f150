//! A camera for the tests: gst-rtsp-server on 127.0.0.1 serving `/cam` (H.264 test pattern and a
//! G.711 A-law tone, shared by its clients), on a GLib main loop of its own. Dropping it hangs up
//! on its clients, as a camera that loses power does.

use gst_rtsp_server::prelude::*;

pub struct Camera {
    pub port: u16,
    server: gst_rtsp_server::RTSPServer,
    main_loop: gst::glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Camera {
    /// Starts a camera on `port` (0: any free port).
    pub fn start(port: u16) -> Self {
        Self::start_with(
            port,
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! rtph264pay name=pay0 pt=96",
        )
    }

    /// A camera whose picture is encoded and payloaded by `video` (ending in `pay0`).
    pub fn start_with(port: u16, video: &str) -> Self {
        Self::start_full(port, video, None)
    }

    /// A camera that lets in only `user` with `password`, by basic or (`digest`) digest auth.
    pub fn start_with_auth(user: &str, password: &str, digest: bool) -> Self {
        Self::start_full(
            0,
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 ! rtph264pay name=pay0 pt=96",
            Some((user, password, digest)),
        )
    }

    fn start_full(port: u16, video: &str, auth: Option<(&str, &str, bool)>) -> Self {
        gst::init().unwrap();
        let ctx = gst::glib::MainContext::new();
        let main_loop = gst::glib::MainLoop::new(Some(&ctx), false);
        let server = gst_rtsp_server::RTSPServer::new();
        server.set_address("127.0.0.1");
        server.set_service(&port.to_string());
        let factory = gst_rtsp_server::RTSPMediaFactory::new();
        factory.set_launch(&format!(
            "( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 \
             ! {video} \
             audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! audio/x-raw,rate=8000,channels=1 \
             ! alawenc ! rtppcmapay name=pay1 pt=8 )"
        ));
        factory.set_shared(true);
        if let Some((user, password, digest)) = auth {
            let a = gst_rtsp_server::RTSPAuth::new();
            let token = gst_rtsp_server::RTSPToken::builder()
                .field(gst_rtsp_server::RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
                .build();
            if digest {
                a.set_supported_methods(gst_rtsp_server::gst_rtsp::RTSPAuthMethod::Digest);
                a.add_digest(user, password, &token);
            } else {
                a.add_basic(
                    &gst_rtsp_server::RTSPAuth::make_basic(user, password),
                    &token,
                );
            }
            server.set_auth(Some(&a));
            factory.add_role_from_structure(
                &gst::Structure::builder("viewer")
                    .field(gst_rtsp_server::RTSP_PERM_MEDIA_FACTORY_ACCESS, true)
                    .field(gst_rtsp_server::RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, true)
                    .build(),
            );
        }
        server.mount_points().unwrap().add_factory("/cam", factory);
        let id = server.attach(Some(&ctx)).expect("the camera listens");
        let port = server.bound_port() as u16;
        let ml = main_loop.clone();
        let thread = std::thread::spawn(move || {
            let _id = id;
            ml.run();
        });
        Self {
            port,
            server,
            main_loop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("rtsp://127.0.0.1:{}/cam", self.port)
    }
}

impl Drop for Camera {
    fn drop(&mut self) {
        // Hang up on every client, then stop listening.
        self.server
            .client_filter(Some(&mut |_, _| gst_rtsp_server::RTSPFilterResult::Remove));
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
