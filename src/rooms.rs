//! Rooms, as WCS's room application (`appKey` "roomApp") runs them: participants join and leave a
//! named room, see each other's streams, and send each other messages. Commands arrive as
//! `sendData` payloads (`{command, options}`); events go out as `OnDataEvent` payloads
//! (`{roomName, name, info}`): STATE to a joiner, JOINED/LEFT/PUBLISHED/UNPUBLISHED/FAILED/MESSAGE to
//! the others. The state here is pure: every change returns the deliveries to make, so the logic is
//! tested without sockets.

use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// One event for one connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The signaling session to send to.
    pub session_id: String,
    /// The `OnDataEvent` payload.
    pub payload: Value,
}

/// Why a room command was refused (the text goes back in `DataStatusEvent.info`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RoomError {
    /// The command or its options are not what the room application takes.
    #[error("{0}")]
    Bad(String),
    /// The participant is not in that room.
    #[error("Not in room {0}")]
    NotInRoom(String),
    /// No participant of that name in the room.
    #[error("Participant {0} not found")]
    NoParticipant(String),
}

#[derive(Debug, Clone, Serialize)]
struct Participant {
    login: String,
    #[serde(rename = "sessionId")]
    session_id: String,
    /// Streams published in this room, by name.
    streams: Vec<String>,
}

#[derive(Debug, Default)]
struct Room {
    record: bool,
    participants: BTreeMap<String, Participant>,
    /// Streams of the room being recorded now, with their file names.
    recording: BTreeMap<String, String>,
}

/// Every room, by name.
#[derive(Debug, Default)]
pub struct Rooms {
    rooms: BTreeMap<String, Room>,
}

fn event(room: &str, name: &str, info: Value) -> Value {
    json!({ "roomName": room, "name": name, "info": info })
}

/// The room-level recording event: `RECORDING` with who, which stream, on or off, and the file.
fn recording_event(room: &str, login: &str, stream: &str, active: bool, file: &str) -> Value {
    event(
        room,
        "RECORDING",
        json!({ "login": login, "name": stream, "active": active, "recordName": file }),
    )
}

impl Rooms {
    /// Runs a `sendData` command from `login` on `session_id`.
    pub fn command(
        &mut self,
        session_id: &str,
        login: &str,
        payload: &Value,
    ) -> Result<Vec<Delivery>, RoomError> {
        let command = payload.get("command").and_then(Value::as_str).unwrap_or("");
        let options = payload.get("options").cloned().unwrap_or(Value::Null);
        if login.is_empty() {
            return Err(RoomError::Bad(
                "A login is required (connect with custom.login)".into(),
            ));
        }
        let room_name = |o: &Value| -> Result<String, RoomError> {
            let n = o
                .get("name")
                .or_else(|| o.get("roomConfig").and_then(|c| c.get("name")))
                .and_then(Value::as_str)
                .unwrap_or("");
            if n.is_empty() || n.len() > 255 {
                return Err(RoomError::Bad(
                    "Room name must be 1 to 255 characters".into(),
                ));
            }
            Ok(n.to_owned())
        };
        match command {
            "join" => {
                let room = room_name(&options)?;
                let record = options
                    .get("record")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                Ok(self.join(&room, login, session_id, record))
            }
            "leave" => {
                let room = room_name(&options)?;
                self.leave(&room, login, session_id)
            }
            "sendMessage" => {
                let room = room_name(&options)?;
                let to = options.get("to").and_then(Value::as_str).unwrap_or("");
                let text = options.get("text").cloned().unwrap_or(Value::Null);
                self.message(&room, login, session_id, to, text)
            }
            other => Err(RoomError::Bad(format!("Unknown room command {other:?}"))),
        }
    }

    fn join(
        &mut self,
        room_name: &str,
        login: &str,
        session_id: &str,
        record: bool,
    ) -> Vec<Delivery> {
        let room = self.rooms.entry(room_name.to_owned()).or_default();
        room.record |= record;
        let mut out = Vec::new();
        // The same login from a new connection (a reload, a reconnect) replaces the old one.
        if let Some(old) = room.participants.remove(login) {
            for p in room.participants.values() {
                out.push(Delivery {
                    session_id: p.session_id.clone(),
                    payload: event(room_name, "LEFT", json!(old.login)),
                });
            }
        }
        // STATE lists the others: a participant with streams as one {login, name} per stream, one
        // without as its login alone (the SDK builds participants from exactly this).
        let mut info = Vec::new();
        for p in room.participants.values() {
            if p.streams.is_empty() {
                info.push(json!(p.login));
            } else {
                for s in &p.streams {
                    info.push(json!({ "login": p.login, "name": s }));
                }
            }
            out.push(Delivery {
                session_id: p.session_id.clone(),
                payload: event(room_name, "JOINED", json!(login)),
            });
        }
        out.push(Delivery {
            session_id: session_id.to_owned(),
            payload: event(room_name, "STATE", Value::Array(info)),
        });
        // A joiner learns at once which streams are being recorded.
        for (stream, file) in &room.recording {
            let owner = room
                .participants
                .values()
                .find(|p| p.streams.contains(stream))
                .map(|p| p.login.clone())
                .unwrap_or_default();
            out.push(Delivery {
                session_id: session_id.to_owned(),
                payload: recording_event(room_name, &owner, stream, true, file),
            });
        }
        room.participants.insert(
            login.to_owned(),
            Participant {
                login: login.to_owned(),
                session_id: session_id.to_owned(),
                streams: Vec::new(),
            },
        );
        out
    }

    fn leave(
        &mut self,
        room_name: &str,
        login: &str,
        session_id: &str,
    ) -> Result<Vec<Delivery>, RoomError> {
        let room = self
            .rooms
            .get_mut(room_name)
            .ok_or_else(|| RoomError::NotInRoom(room_name.into()))?;
        match room.participants.get(login) {
            Some(p) if p.session_id == session_id => {}
            _ => return Err(RoomError::NotInRoom(room_name.into())),
        }
        room.participants.remove(login);
        let out = room
            .participants
            .values()
            .map(|p| Delivery {
                session_id: p.session_id.clone(),
                payload: event(room_name, "LEFT", json!(login)),
            })
            .collect();
        if room.participants.is_empty() {
            self.rooms.remove(room_name);
        }
        Ok(out)
    }

    fn message(
        &mut self,
        room_name: &str,
        login: &str,
        session_id: &str,
        to: &str,
        text: Value,
    ) -> Result<Vec<Delivery>, RoomError> {
        let room = self
            .rooms
            .get(room_name)
            .ok_or_else(|| RoomError::NotInRoom(room_name.into()))?;
        if room
            .participants
            .get(login)
            .is_none_or(|p| p.session_id != session_id)
        {
            return Err(RoomError::NotInRoom(room_name.into()));
        }
        let target = room
            .participants
            .get(to)
            .ok_or_else(|| RoomError::NoParticipant(to.into()))?;
        Ok(vec![Delivery {
            session_id: target.session_id.clone(),
            payload: event(room_name, "MESSAGE", json!({ "from": login, "text": text })),
        }])
    }

    /// Every room a session is in, with the login it uses there.
    /// The (room, login) pairs connection `session_id` is in.
    pub fn memberships(&self, session_id: &str) -> Vec<(String, String)> {
        self.rooms
            .iter()
            .flat_map(|(r, room)| {
                room.participants
                    .values()
                    .filter(|p| p.session_id == session_id)
                    .map(move |p| (r.clone(), p.login.clone()))
            })
            .collect()
    }

    /// A stream of `session_id` started; when its room (`custom.name`) is one the session is in, the
    /// others are told PUBLISHED. Returns the room it belongs to.
    pub fn published(
        &mut self,
        session_id: &str,
        room_name: &str,
        stream: &str,
    ) -> (Option<String>, Vec<Delivery>) {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return (None, Vec::new());
        };
        let Some(login) = room
            .participants
            .values()
            .find(|p| p.session_id == session_id)
            .map(|p| p.login.clone())
        else {
            return (None, Vec::new());
        };
        if let Some(p) = room.participants.get_mut(&login) {
            if !p.streams.iter().any(|s| s == stream) {
                p.streams.push(stream.to_owned());
            }
        }
        let out = room
            .participants
            .values()
            .filter(|p| p.login != login)
            .map(|p| Delivery {
                session_id: p.session_id.clone(),
                payload: event(
                    room_name,
                    "PUBLISHED",
                    json!({ "login": login, "name": stream }),
                ),
            })
            .collect();
        (Some(room_name.to_owned()), out)
    }

    /// A room stream ended (`status` is UNPUBLISHED or FAILED); the others are told.
    pub fn unpublished(
        &mut self,
        session_id: &str,
        room_name: &str,
        stream: &str,
        status: &str,
    ) -> Vec<Delivery> {
        let Some(room) = self.rooms.get_mut(room_name) else {
            return Vec::new();
        };
        let Some(p) = room
            .participants
            .values_mut()
            .find(|p| p.session_id == session_id)
        else {
            return Vec::new();
        };
        let before = p.streams.len();
        p.streams.retain(|s| s != stream);
        if p.streams.len() == before {
            return Vec::new();
        }
        let login = p.login.clone();
        room.participants
            .values()
            .filter(|p| p.login != login)
            .map(|p| Delivery {
                session_id: p.session_id.clone(),
                payload: event(room_name, status, json!({ "login": login, "name": stream })),
            })
            .collect()
    }

    /// Recording of `stream` started or stopped: every participant of the room it is published in
    /// is told (`RECORDING`), the publisher included.
    pub fn recording(&mut self, stream: &str, active: bool, file: &str) -> Vec<Delivery> {
        let mut out = Vec::new();
        for (name, room) in self.rooms.iter_mut() {
            let owner = room
                .participants
                .values()
                .find(|p| p.streams.iter().any(|s| s == stream))
                .map(|p| p.login.clone());
            // A stream that already left the room still has its recording end announced there.
            let owner = match owner {
                Some(o) => o,
                None if !active && room.recording.contains_key(stream) => String::new(),
                None => continue,
            };
            if active {
                room.recording.insert(stream.to_owned(), file.to_owned());
            } else {
                room.recording.remove(stream);
            }
            for p in room.participants.values() {
                out.push(Delivery {
                    session_id: p.session_id.clone(),
                    payload: recording_event(name, &owner, stream, active, file),
                });
            }
        }
        out
    }

    /// The `record` command (`{command: "record", options: {name, active}}`): a participant asks to
    /// start (or stop) recording its room. `None` for other commands; otherwise whether to record
    /// and the room's name.
    pub fn record_request(
        &self,
        session_id: &str,
        payload: &Value,
    ) -> Option<Result<(bool, String), RoomError>> {
        if payload.get("command").and_then(Value::as_str) != Some("record") {
            return None;
        }
        let options = payload.get("options").cloned().unwrap_or(Value::Null);
        let name = options.get("name").and_then(Value::as_str).unwrap_or("");
        let active = options
            .get("active")
            .and_then(Value::as_bool)
            .unwrap_or(true);
        Some(match self.rooms.get(name) {
            Some(room)
                if room
                    .participants
                    .values()
                    .any(|p| p.session_id == session_id) =>
            {
                Ok((active, name.to_owned()))
            }
            _ => Err(RoomError::NotInRoom(name.to_owned())),
        })
    }

    /// The streams published in room `name`, each with its publisher's login (`(login, stream)`);
    /// `None` when there is no such room.
    pub fn members(&self, name: &str) -> Option<Vec<(String, String)>> {
        let room = self.rooms.get(name)?;
        Some(
            room.participants
                .values()
                .flat_map(|p| p.streams.iter().map(|s| (p.login.clone(), s.clone())))
                .collect(),
        )
    }

    /// The rooms connection `session_id` is in.
    pub fn rooms_of(&self, session_id: &str) -> Vec<String> {
        self.memberships(session_id)
            .into_iter()
            .map(|(room, _)| room)
            .collect()
    }

    /// Whether room `name` exists (has anyone in it).
    pub fn exists(&self, name: &str) -> bool {
        self.rooms.contains_key(name)
    }

    /// Whether a room asked for its streams to be recorded (joined with `record: true`).
    pub fn records(&self, room: &str) -> bool {
        self.rooms.get(room).is_some_and(|r| r.record)
    }

    /// A connection ended: it leaves every room it was in.
    pub fn disconnected(&mut self, session_id: &str) -> Vec<Delivery> {
        let mut out = Vec::new();
        for (room, login) in self.memberships(session_id) {
            if let Ok(d) = self.leave(&room, &login, session_id) {
                out.extend(d);
            }
        }
        out
    }

    /// Rooms for REST: name, record flag, participants and their streams.
    pub fn list(&self, name: Option<&str>) -> Vec<Value> {
        self.rooms
            .iter()
            .filter(|(n, _)| name.is_none_or(|x| x == n.as_str()))
            .map(|(n, r)| json!({ "name": n, "record": r.record, "participants": r.participants.values().collect::<Vec<_>>() }))
            .collect()
    }

    /// Removes a room; returns the sessions that were in it and the streams they published there.
    pub fn remove(&mut self, name: &str) -> Option<(Vec<Delivery>, Vec<String>)> {
        let room = self.rooms.remove(name)?;
        let mut out = Vec::new();
        let mut streams = Vec::new();
        for p in room.participants.values() {
            streams.extend(p.streams.iter().cloned());
            for other in room.participants.values().filter(|o| o.login != p.login) {
                out.push(Delivery {
                    session_id: p.session_id.clone(),
                    payload: event(name, "LEFT", json!(other.login)),
                });
            }
        }
        Some((out, streams))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn recording_is_told_to_the_whole_room_and_to_joiners() {
        use serde_json::json;
        let mut r = super::Rooms::default();
        r.command(
            "s1",
            "emp",
            &json!({"command": "join", "options": {"name": "iv"}}),
        )
        .unwrap();
        r.command(
            "s2",
            "cand",
            &json!({"command": "join", "options": {"name": "iv"}}),
        )
        .unwrap();
        r.published("s2", "iv", "cand-cam");
        let d = r.recording("cand-cam", true, "cand-cam-1.mp4");
        assert_eq!(d.len(), 2);
        assert!(d.iter().all(|d| d.payload["name"] == "RECORDING"
            && d.payload["info"]["active"] == true
            && d.payload["info"]["login"] == "cand"
            && d.payload["info"]["recordName"] == "cand-cam-1.mp4"));
        let joined = r
            .command(
                "s3",
                "hr",
                &json!({"command": "join", "options": {"name": "iv"}}),
            )
            .unwrap();
        assert!(joined
            .iter()
            .any(|d| d.session_id == "s3" && d.payload["name"] == "RECORDING"));
        let req = r
            .record_request(
                "s1",
                &json!({"command": "record", "options": {"name": "iv", "active": false}}),
            )
            .unwrap()
            .unwrap();
        assert_eq!(req, (false, "iv".to_string()));
        assert_eq!(
            r.members("iv"),
            Some(vec![("cand".to_string(), "cand-cam".to_string())])
        );
        assert_eq!(r.rooms_of("s3"), vec!["iv".to_string()]);
        assert!(r
            .record_request(
                "sX",
                &json!({"command": "record", "options": {"name": "iv"}})
            )
            .unwrap()
            .is_err());
        let d = r.recording("cand-cam", false, "cand-cam-1.mp4");
        assert_eq!(d.len(), 3);
    }

    use super::*;

    fn join(r: &mut Rooms, s: &str, login: &str) -> Vec<Delivery> {
        r.command(
            s,
            login,
            &json!({"command": "join", "options": {"name": "interview", "record": false}}),
        )
        .unwrap()
    }

    fn to<'a>(d: &'a [Delivery], s: &str) -> Vec<&'a Value> {
        d.iter()
            .filter(|x| x.session_id == s)
            .map(|x| &x.payload)
            .collect()
    }

    #[test]
    fn three_join_publish_message_and_leave() {
        let mut r = Rooms::default();
        let d = join(&mut r, "s1", "alice");
        assert_eq!(to(&d, "s1")[0]["name"], "STATE");
        assert_eq!(to(&d, "s1")[0]["info"], json!([]));
        let (room, d) = r.published("s1", "interview", "interview-alice-ab12");
        assert_eq!(room.as_deref(), Some("interview"));
        assert!(d.is_empty(), "nobody else to tell");
        let d = join(&mut r, "s2", "bob");
        assert_eq!(
            to(&d, "s1")[0],
            &json!({"roomName": "interview", "name": "JOINED", "info": "bob"})
        );
        assert_eq!(
            to(&d, "s2")[0]["info"],
            json!([{"login": "alice", "name": "interview-alice-ab12"}])
        );
        let d = join(&mut r, "s3", "hr");
        let state = &to(&d, "s3")[0]["info"];
        assert_eq!(
            state,
            &json!([{"login": "alice", "name": "interview-alice-ab12"}, "bob"])
        );
        let (_, d) = r.published("s2", "interview", "interview-bob-cd34");
        assert_eq!(d.len(), 2);
        assert_eq!(to(&d, "s3")[0]["name"], "PUBLISHED");
        let d = r
            .command("s3", "hr", &json!({"command": "sendMessage", "options": {"roomConfig": {"name": "interview"}, "to": "alice", "text": "hi"}}))
            .unwrap();
        assert_eq!(
            d,
            vec![Delivery {
                session_id: "s1".into(),
                payload: json!({"roomName": "interview", "name": "MESSAGE", "info": {"from": "hr", "text": "hi"}})
            }]
        );
        let d = r.unpublished("s2", "interview", "interview-bob-cd34", "UNPUBLISHED");
        assert_eq!(d.len(), 2);
        let d = r.disconnected("s1");
        assert_eq!(d.len(), 2);
        assert!(d
            .iter()
            .all(|x| x.payload["name"] == "LEFT" && x.payload["info"] == "alice"));
        assert_eq!(
            r.list(Some("interview"))[0]["participants"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }

    #[test]
    fn refusals() {
        let mut r = Rooms::default();
        assert!(r
            .command(
                "s1",
                "",
                &json!({"command": "join", "options": {"name": "x"}})
            )
            .is_err());
        assert_eq!(
            r.command("s1", "a", &json!({"command": "fly", "options": {}})),
            Err(RoomError::Bad("Unknown room command \"fly\"".into()))
        );
        assert_eq!(
            r.command(
                "s1",
                "a",
                &json!({"command": "leave", "options": {"name": "x"}})
            ),
            Err(RoomError::NotInRoom("x".into()))
        );
        join(&mut r, "s1", "a");
        assert_eq!(
            r.command("s1", "a", &json!({"command": "sendMessage", "options": {"roomConfig": {"name": "interview"}, "to": "ghost", "text": "?"}})),
            Err(RoomError::NoParticipant("ghost".into()))
        );
        // A stream published in a room the session is not in is not a room stream.
        assert_eq!(r.published("s9", "interview", "x").0, None);
    }

    #[test]
    fn same_login_from_a_new_connection_replaces_the_old() {
        let mut r = Rooms::default();
        join(&mut r, "s1", "a");
        join(&mut r, "s2", "b");
        let d = join(&mut r, "s3", "a");
        let to_b: Vec<_> = to(&d, "s2")
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(to_b, vec!["LEFT", "JOINED"]);
        assert!(
            r.disconnected("s1").is_empty(),
            "the replaced connection is no longer a member"
        );
    }
}
