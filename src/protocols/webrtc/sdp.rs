//! Reading WebRTC offers: which m-lines are audio or video, which codecs (and payload types) the peer
//! takes in its order of preference, and the transport-wide congestion control extension id, so the
//! server can build transceivers that match the offer exactly. Also the small rewrites the answer
//! needs (announced public address). No I/O, no pipelines: unit-tested on real browser offers.

use crate::engine::media::Codec;
use std::net::IpAddr;

/// The TWCC header extension; negotiating it lets the browser's bandwidth estimate ramp up.
pub const TWCC_URI: &str =
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";

/// Why an offer was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SdpError {
    /// Not SDP at all.
    #[error("malformed SDP: {0}")]
    Malformed(String),
    /// Valid SDP, but nothing usable in it.
    #[error("unusable SDP: {0}")]
    Unusable(String),
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An audio m-line.
    Audio,
    /// A video m-line.
    Video,
}

/// One codec an m-line offers.
#[derive(Debug, Clone)]
pub struct OfferedCodec {
    /// Which codec.
    pub codec: Codec,
    /// Its payload type in this offer.
    pub pt: u8,
    /// H.264 profile-level-id, when given.
    pub profile_level_id: Option<String>,
}

/// One audio or video m-line of an offer.
#[derive(Debug, Clone)]
pub struct OfferedMedia {
    /// Index of the m-line.
    pub mline: usize,
    /// Audio or video.
    pub kind: Kind,
    /// `a=mid`.
    pub mid: Option<String>,
    /// The peer sends on this m-line (sendrecv or sendonly).
    pub peer_sends: bool,
    /// The peer receives on this m-line (sendrecv or recvonly).
    pub peer_receives: bool,
    /// Codecs we support, in the peer's order of preference.
    pub codecs: Vec<OfferedCodec>,
    /// The TWCC extension id, when offered.
    pub twcc_id: Option<u32>,
}

impl OfferedMedia {
    /// The peer's most preferred codec of ours.
    pub fn preferred(&self) -> Option<&OfferedCodec> {
        self.codecs.first()
    }

    /// The payload type to send `codec` with, if the peer takes it. For H.264 the constrained
    /// baseline entry is preferred: it is the profile every WebRTC decoder must support.
    pub fn pt_for(&self, codec: Codec) -> Option<&OfferedCodec> {
        let mut matching = self.codecs.iter().filter(|c| c.codec == codec);
        if codec != Codec::H264 {
            return matching.next();
        }
        let all: Vec<&OfferedCodec> = matching.collect();
        let rank =
            |c: &&OfferedCodec| match c.profile_level_id.as_deref().map(str::to_ascii_lowercase) {
                Some(p) if p == "42e01f" => 0,
                Some(p) if p.starts_with("42e0") => 1,
                Some(p) if p.starts_with("4200") => 2,
                None => 3,
                _ => 4,
            };
        all.into_iter().min_by_key(rank)
    }
}

/// Refuses an offer larger than `max_bytes` or with more than `max_sections` m-lines before any
/// work is done on it: webrtcbin's cost grows with every m-line, and a browser sends two or three.
pub fn check_limits(text: &str, max_bytes: usize, max_sections: usize) -> Result<(), SdpError> {
    if text.len() > max_bytes {
        return Err(SdpError::Unusable(format!(
            "offer is {} bytes, more than the {max_bytes} accepted",
            text.len()
        )));
    }
    let sections = text
        .split('\n')
        .filter(|l| l.trim_start().starts_with("m="))
        .count();
    if sections > max_sections {
        return Err(SdpError::Unusable(format!(
            "offer has {sections} media sections, more than the {max_sections} accepted"
        )));
    }
    Ok(())
}

/// Reads an offer; refuses text that is not a WebRTC offer (no ICE credentials, no DTLS fingerprint,
/// no audio or video).
pub fn analyze_offer(text: &str) -> Result<Vec<OfferedMedia>, SdpError> {
    let text = text.replace("\r\n", "\n");
    if !text.starts_with("v=0") {
        return Err(SdpError::Malformed("does not start with v=0".into()));
    }
    let mut session_lines = Vec::new();
    let mut sections: Vec<Vec<&str>> = Vec::new();
    for line in text.lines().map(str::trim_end) {
        if line.is_empty() {
            continue;
        }
        if line.len() < 2 || line.as_bytes()[1] != b'=' {
            return Err(SdpError::Malformed(format!(
                "bad line {:?}",
                truncate(line)
            )));
        }
        if line.starts_with("m=") {
            sections.push(vec![line]);
        } else if let Some(s) = sections.last_mut() {
            s.push(line);
        } else {
            session_lines.push(line);
        }
    }
    if sections.is_empty() {
        return Err(SdpError::Unusable("no m-lines".into()));
    }
    let session_has = |prefix: &str| session_lines.iter().any(|l| l.starts_with(prefix));
    let mut out = Vec::new();
    for (idx, lines) in sections.iter().enumerate() {
        let mut parts = lines[0][2..].split_whitespace();
        let kind = match parts.next() {
            Some("audio") => Kind::Audio,
            Some("video") => Kind::Video,
            _ => continue,
        };
        let port: u32 = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| SdpError::Malformed(format!("bad m-line {:?}", truncate(lines[0]))))?;
        let _proto = parts.next();
        let pts: Vec<u8> = parts.filter_map(|p| p.parse().ok()).collect();
        let has = |prefix: &str| lines.iter().any(|l| l.starts_with(prefix));
        if port == 0 && !has("a=bundle-only") {
            continue; // rejected m-line
        }
        if !(has("a=ice-ufrag:") || session_has("a=ice-ufrag:"))
            || !(has("a=ice-pwd:") || session_has("a=ice-pwd:"))
        {
            return Err(SdpError::Unusable(format!(
                "m-line {idx} has no ICE credentials"
            )));
        }
        if !(has("a=fingerprint:") || session_has("a=fingerprint:")) {
            return Err(SdpError::Unusable(format!(
                "m-line {idx} has no DTLS fingerprint"
            )));
        }
        let attr = |name: &str| -> Vec<&str> {
            lines
                .iter()
                .filter_map(|l| l.strip_prefix("a="))
                .filter_map(|l| l.strip_prefix(name))
                .collect()
        };
        let direction = ["sendrecv", "sendonly", "recvonly", "inactive"]
            .into_iter()
            .find(|d| has(&format!("a={d}")))
            .unwrap_or("sendrecv");
        let mid = attr("mid:").first().map(|s| s.to_string());
        let twcc_id = attr("extmap:").into_iter().find_map(|v| {
            let (id, uri) = v.split_once(' ')?;
            let uri = uri.split_whitespace().next()?;
            if uri == TWCC_URI {
                id.split('/').next()?.parse().ok()
            } else {
                None
            }
        });
        let rtpmaps = attr("rtpmap:");
        let fmtps = attr("fmtp:");
        let mut codecs = Vec::new();
        for pt in pts {
            let prefix = format!("{pt} ");
            let Some(name) = rtpmaps
                .iter()
                .find_map(|m| m.strip_prefix(&prefix))
                .and_then(|m| m.split('/').next())
            else {
                continue;
            };
            let Some(codec) = Codec::from_rtp_name(name) else {
                continue;
            };
            if (codec.is_video()) != (kind == Kind::Video) {
                continue;
            }
            let fmtp = fmtps
                .iter()
                .find_map(|f| f.strip_prefix(&prefix))
                .unwrap_or("");
            let param = |key: &str| {
                fmtp.split(';')
                    .filter_map(|kv| kv.trim().split_once('='))
                    .find(|(k, _)| k.eq_ignore_ascii_case(key))
                    .map(|(_, v)| v.to_string())
            };
            if codec == Codec::H264 && param("packetization-mode").as_deref() != Some("1") {
                // Mode 0 (single NAL) cannot carry our fragmented access units.
                continue;
            }
            codecs.push(OfferedCodec {
                codec,
                pt,
                profile_level_id: param("profile-level-id"),
            });
        }
        out.push(OfferedMedia {
            mline: idx,
            kind,
            mid,
            peer_sends: matches!(direction, "sendrecv" | "sendonly"),
            peer_receives: matches!(direction, "sendrecv" | "recvonly"),
            codecs,
            twcc_id,
        });
    }
    if out.is_empty() {
        return Err(SdpError::Unusable("no audio or video m-line".into()));
    }
    Ok(out)
}

/// Adds a copy of every host candidate with the announced public address, for 1:1 NAT.
pub fn announce_address(answer: &str, public: IpAddr) -> String {
    let mut out = String::with_capacity(answer.len() + 256);
    for line in answer.split_inclusive('\n') {
        out.push_str(line);
        let l = line.trim_end();
        if let Some(cand) = l.strip_prefix("a=candidate:") {
            let f: Vec<&str> = cand.split(' ').collect();
            // foundation component transport priority address port typ host ...
            if f.len() >= 8 && f[6] == "typ" && f[7] == "host" && f[4] != public.to_string() {
                let mut g: Vec<String> = f.iter().map(|s| s.to_string()).collect();
                g[0] = format!("{}9", g[0]);
                g[4] = public.to_string();
                // Slightly below the local candidate so a LAN peer still prefers the direct path.
                if let Ok(p) = g[3].parse::<u32>() {
                    g[3] = p.saturating_sub(1).to_string();
                }
                out.push_str("a=candidate:");
                out.push_str(&g.join(" "));
                out.push_str("\r\n");
            }
        }
    }
    out
}

/// Gives every sending m-section of an answer the same `a=msid`, so the browser puts audio and
/// video into one MediaStream (players commonly attach `streams[0]`). webrtcbin 1.22 writes an
/// msid only for sections whose caps were settled when the answer was made, and then only as an
/// ssrc attribute; those are replaced by the section-level line.
pub fn unify_msid(answer: &str, stream_id: &str) -> String {
    let mut sections: Vec<Vec<String>> = vec![Vec::new()];
    for line in answer.lines() {
        if line.starts_with("m=") {
            sections.push(Vec::new());
        }
        if let Some(last) = sections.last_mut() {
            last.push(line.to_owned());
        }
    }
    let mut out = String::with_capacity(answer.len() + 128);
    for (i, sec) in sections.iter().enumerate() {
        let sending = i > 0
            && sec.iter().any(|l| l == "a=sendonly" || l == "a=sendrecv")
            && !sec
                .iter()
                .any(|l| l.starts_with("m=") && l.split(' ').nth(1) == Some("0"));
        let mid = sec
            .iter()
            .find_map(|l| l.strip_prefix("a=mid:"))
            .unwrap_or("")
            .to_owned();
        for l in sec {
            let ssrc_msid = l.starts_with("a=ssrc:") && l.contains(" msid:");
            if sending && (l.starts_with("a=msid:") || ssrc_msid) {
                continue;
            }
            out.push_str(l);
            out.push_str("\r\n");
            if sending && l.starts_with("a=mid:") {
                out.push_str(&format!("a=msid:{stream_id} {stream_id}-{mid}\r\n"));
            }
        }
    }
    out
}

fn truncate(s: &str) -> &str {
    let end = s.char_indices().nth(60).map(|(i, _)| i).unwrap_or(s.len());
    &s[..end]
}

#[cfg(test)]
mod tests {
    #[test]
    fn oversized_offers_are_refused_before_parsing() {
        let many = format!(
            "v=0\r\n{}",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n".repeat(17)
        );
        assert!(super::check_limits(&many, 64 * 1024, 16)
            .unwrap_err()
            .to_string()
            .contains("17 media sections"));
        assert!(super::check_limits(&many, 100, 32)
            .unwrap_err()
            .to_string()
            .contains("bytes"));
        assert!(super::check_limits(&many, 64 * 1024, 17).is_ok());
    }

    use super::*;

    const CHROME_PUBLISH: &str = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 63 0\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n\
a=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\na=mid:0\r\n\
a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\na=sendonly\r\n\
a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\na=rtpmap:0 PCMU/8000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103 108 109\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n\
a=fingerprint:sha-256 AA:BB\r\na=mid:1\r\na=extmap:4/sendrecv http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\na=sendonly\r\n\
a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
a=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\n\
a=rtpmap:103 H264/90000\r\na=fmtp:103 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
a=rtpmap:108 H264/90000\r\na=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
a=rtpmap:109 rtx/90000\r\n";

    #[test]
    fn reads_chrome_offer() {
        let m = analyze_offer(CHROME_PUBLISH).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].kind, Kind::Audio);
        assert_eq!(m[0].twcc_id, Some(3));
        assert!(m[0].peer_sends && !m[0].peer_receives);
        assert_eq!(m[0].preferred().unwrap().codec, Codec::Opus);
        assert_eq!(m[0].preferred().unwrap().pt, 111);
        assert_eq!(m[1].kind, Kind::Video);
        assert_eq!(m[1].mid.as_deref(), Some("1"));
        assert_eq!(m[1].twcc_id, Some(4));
        assert_eq!(m[1].preferred().unwrap().codec, Codec::Vp8);
        // packetization-mode=0 is skipped; 42e01f is preferred over 42001f.
        assert_eq!(m[1].pt_for(Codec::H264).unwrap().pt, 108);
        assert_eq!(
            m[1].codecs
                .iter()
                .filter(|c| c.codec == Codec::H264)
                .count(),
            2
        );
    }

    #[test]
    fn refuses_garbage() {
        assert!(matches!(
            analyze_offer("hello"),
            Err(SdpError::Malformed(_))
        ));
        assert!(matches!(
            analyze_offer("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\n"),
            Err(SdpError::Unusable(_))
        ));
        let no_ice = CHROME_PUBLISH.replace("a=ice-ufrag:abcd\r\n", "");
        assert!(matches!(analyze_offer(&no_ice), Err(SdpError::Unusable(_))));
        assert!(matches!(
            analyze_offer("v=0\r\nthis is not sdp\r\n"),
            Err(SdpError::Malformed(_))
        ));
    }

    #[test]
    fn one_msid_for_every_sending_section() {
        let answer = "v=0\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 102\r\na=mid:0\r\na=sendonly\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=sendonly\r\na=ssrc:5 msid:user1@host-x webrtctransceiver1\r\na=ssrc:5 cname:c\r\n";
        let out = unify_msid(answer, "sg");
        assert!(out.contains("a=mid:0\r\na=msid:sg sg-0\r\n"), "{out}");
        assert!(out.contains("a=mid:1\r\na=msid:sg sg-1\r\n"), "{out}");
        assert!(!out.contains("msid:user1"), "{out}");
        assert!(out.contains("a=ssrc:5 cname:c"), "{out}");
        let recv = "v=0\r\nm=video 9 X 96\r\na=mid:0\r\na=recvonly\r\n";
        assert!(
            !unify_msid(recv, "sg").contains("a=msid"),
            "receive-only sections get none"
        );
    }

    #[test]
    fn announces_public_address() {
        let answer = "v=0\r\na=candidate:1 1 UDP 2015363327 127.0.0.1 31000 typ host\r\n";
        let out = announce_address(answer, "203.0.113.7".parse().unwrap());
        assert!(out.contains("a=candidate:19 1 UDP 2015363326 203.0.113.7 31000 typ host\r\n"));
        assert!(out.contains("127.0.0.1 31000"));
    }
}
