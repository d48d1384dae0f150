//! Where a mixer puts its inputs. Layouts are data files (`layouts/*.toml`, described in that
//! folder's README) rather than code, so an operator can add or tune one without a rebuild, and
//! WCS's layout class names simply map onto the built-in files. A layout is a list of variants
//! (chosen by the number of inputs and whether there is a focus input), each a list of areas that
//! take the focus input or the rest of the inputs and arrange them in a grid. This module is pure:
//! given the inputs in join order, the active speaker and the picture's size it says each input's
//! tile; the mixer reflows by asking again whenever any of these changes.

use serde::Deserialize;
use std::path::Path;

/// One input's place in the picture, in pixels. Positions and sizes are even (I420 needs it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    /// Left edge.
    pub x: i32,
    /// Top edge.
    pub y: i32,
    /// Width, at least 2.
    pub width: i32,
    /// Height, at least 2.
    pub height: i32,
    /// Drawing order, 1 and up (0 is the background); higher is drawn above.
    pub zorder: u32,
}

/// What the layout knows of an input.
#[derive(Debug, Clone, Copy)]
pub struct InputDesc<'a> {
    /// Its stream name.
    pub name: &'a str,
    /// It is a screen share (see [`is_screen_name`]).
    pub is_screen: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Focus {
    Speaker,
    Screen,
    None,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Take {
    Focus,
    Rest,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
enum Align {
    Start,
    #[default]
    Center,
    End,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Area {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    take: Take,
    columns: Option<usize>,
    rows: Option<usize>,
    max: Option<usize>,
    cell_w: Option<f64>,
    cell_h: Option<f64>,
    #[serde(default)]
    align: Align,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Variant {
    min_inputs: Option<usize>,
    max_inputs: Option<usize>,
    focus: Option<bool>,
    areas: Vec<Area>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    focus: Focus,
    variant: Vec<Variant>,
}

/// A parsed and checked layout.
#[derive(Debug, Clone)]
pub struct Layout {
    name: String,
    spec: Spec,
}

const BUILTIN: [(&str, &str); 4] = [
    ("grid", include_str!("../../../layouts/grid.toml")),
    ("speaker", include_str!("../../../layouts/speaker.toml")),
    ("pip", include_str!("../../../layouts/pip.toml")),
    ("screen", include_str!("../../../layouts/screen.toml")),
];

/// WCS's rule: a stream whose name contains `marker` (default `desktop`, any case) is a screen
/// share. An empty marker marks nothing, so "no screen shares" is expressible.
pub fn is_screen_name(name: &str, marker: &str) -> bool {
    !marker.is_empty() && name.to_lowercase().contains(&marker.to_lowercase())
}

/// Line and column (1-based) of byte `offset` in `text`, for error messages.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// What is wrong with `area`, if anything.
fn check_area(a: &Area, focus: Focus) -> Result<(), String> {
    let fractions = [("x", a.x), ("y", a.y), ("w", a.w), ("h", a.h)];
    if let Some((k, v)) = fractions.iter().find(|(_, v)| !(0.0..=1.0).contains(v)) {
        return Err(format!(
            "{k} = {v} is not a fraction of the picture (0 to 1)"
        ));
    }
    if a.w <= 0.0 || a.h <= 0.0 {
        return Err("w and h must be above 0".into());
    }
    // A little slack: 0.1 + 0.9 is not exactly 1 in floating point.
    if a.x + a.w > 1.0 + 1e-9 || a.y + a.h > 1.0 + 1e-9 {
        return Err("the area reaches beyond the picture (x + w or y + h above 1)".into());
    }
    for (k, v) in [("columns", a.columns), ("rows", a.rows), ("max", a.max)] {
        if v == Some(0) {
            return Err(format!("{k} must be at least 1"));
        }
    }
    for (k, v) in [("cell_w", a.cell_w), ("cell_h", a.cell_h)] {
        if v.is_some_and(|v| !(v > 0.0 && v <= 1.0)) {
            return Err(format!("{k} must be above 0 and at most 1"));
        }
    }
    if a.take == Take::Focus && focus == Focus::None {
        return Err("take = \"focus\" in a layout with focus = \"none\" never shows anyone".into());
    }
    Ok(())
}

/// What is wrong with `spec`, if anything, with the variant and area it is in.
fn check(spec: &Spec) -> Result<(), String> {
    let Some(last) = spec.variant.last() else {
        return Err("no [[variant]]".into());
    };
    for (vi, v) in spec.variant.iter().enumerate() {
        let at = format!("variant {}", vi + 1);
        if v.areas.is_empty() {
            return Err(format!("{at}: no areas"));
        }
        if v.areas.iter().filter(|a| a.take == Take::Focus).count() > 1 {
            return Err(format!("{at}: more than one area takes the focus"));
        }
        for (ai, a) in v.areas.iter().enumerate() {
            check_area(a, spec.focus).map_err(|e| format!("{at}, area {}: {e}", ai + 1))?;
        }
    }
    // Otherwise some number of inputs would match no variant and the picture would be empty.
    if last.min_inputs.is_some() || last.max_inputs.is_some() || last.focus.is_some() {
        return Err("the last [[variant]] must have no conditions, so every case has one".into());
    }
    Ok(())
}

/// Parses and checks a layout; errors start with `file` (how the file is named to the user).
fn parse_file(file: &str, name: &str, text: &str) -> Result<Layout, String> {
    let spec: Spec = toml::from_str(text).map_err(|e| match e.span() {
        Some(span) => {
            let (line, col) = line_col(text, span.start);
            format!("{file}: line {line}, column {col}: {}", e.message())
        }
        None => format!("{file}: {}", e.message()),
    })?;
    check(&spec).map_err(|e| format!("{file}: {e}"))?;
    Ok(Layout {
        name: name.to_owned(),
        spec,
    })
}

/// Whether `name` can be a file name in an operator's folder: no separators, no `..` escape.
fn file_safe(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Our layout for one of WCS's class names (package optional), or one of our names in any case.
fn wcs_class(name: &str) -> Option<&'static str> {
    let short = name.rsplit('.').next().unwrap_or(name).to_ascii_lowercase();
    if let Some(ours) = Layout::builtin_names().iter().find(|n| **n == short) {
        return Some(ours);
    }
    // Suffixes, since WCS has several variants of each (paddings, alignments).
    let rules: [(&str, &'static str); 6] = [
        ("gridlayout", "grid"),
        ("desktoplayout", "screen"),
        ("screensharinglayout", "screen"),
        ("speakerlayout", "speaker"),
        ("pictureinpicturelayout", "pip"),
        ("piplayout", "pip"),
    ];
    rules
        .iter()
        .find(|(suffix, _)| short.ends_with(suffix))
        .map(|(_, ours)| *ours)
}

impl Layout {
    /// Parses a layout file; the error says what is wrong and where
    /// (`layouts/NAME.toml: line L, column C: ...` or `layouts/NAME.toml: variant V, area A: ...`).
    pub fn parse(name: &str, text: &str) -> Result<Layout, String> {
        parse_file(&format!("layouts/{name}.toml"), name, text)
    }

    /// One of the built-in layouts (`layouts/NAME.toml`, compiled in).
    pub fn builtin(name: &str) -> Option<Layout> {
        let (n, text) = BUILTIN.iter().find(|(n, _)| *n == name)?;
        // The built-in files are checked by the tests, so this does not fail in practice.
        Layout::parse(n, text).ok()
    }

    /// The built-in layouts' names.
    pub fn builtin_names() -> &'static [&'static str] {
        &["grid", "speaker", "pip", "screen"]
    }

    /// Resolves a layout as named over REST: `dir/NAME.toml` first (an operator's folder, which
    /// may also replace a built-in layout), then our names, then WCS's layout class names (e.g.
    /// `com.flashphoner.media.mixer.video.presentation.GridLayout` is `grid`).
    pub fn resolve(name: &str, dir: Option<&Path>) -> Result<Layout, String> {
        if let (Some(dir), true) = (dir, file_safe(name)) {
            let path = dir.join(format!("{name}.toml"));
            match std::fs::read_to_string(&path) {
                Ok(text) => return parse_file(&path.display().to_string(), name, &text),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // A file that is there but unreadable is the operator's to fix, not to skip.
                Err(e) => return Err(format!("{}: {e}", path.display())),
            }
        }
        let ours = wcs_class(name).ok_or_else(|| {
            format!(
                "unknown layout {name:?}: use one of {}, a WCS layout class or a file of the \
                 layout folder",
                Self::builtin_names().join(", ")
            )
        })?;
        Self::builtin(ours).ok_or_else(|| format!("built-in layout {ours} does not parse"))
    }

    /// Its name (the built-in one a WCS class maps to, or the operator's file's).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this layout's focus is the active speaker (so the caller knows to track levels).
    pub fn follows_speaker(&self) -> bool {
        self.spec.focus == Focus::Speaker
    }

    /// The focus input's index, if there is one.
    fn focus_of(&self, inputs: &[InputDesc<'_>], speaker: Option<usize>) -> Option<usize> {
        match self.spec.focus {
            Focus::None => None,
            Focus::Speaker if inputs.is_empty() => None,
            // Until someone speaks, the first to join (usually the host) is the focus.
            Focus::Speaker => Some(speaker.filter(|s| *s < inputs.len()).unwrap_or(0)),
            Focus::Screen => inputs.iter().position(|i| i.is_screen),
        }
    }

    /// Places `inputs` (in join order) in a `width` x `height` picture. `speaker` is the index of
    /// the active speaker, if any (used when the focus is the speaker; when `None` the first input
    /// is the focus). When the focus is the screen, the first input with `is_screen` is.
    /// Returns one entry per input: `None` when it is not shown (an area's `max` is reached, or
    /// its cell would be under 2 pixels). Tiles have even positions and sizes, lie inside the
    /// picture and do not overlap within one area; later areas have higher z-orders, from 1.
    pub fn place(
        &self,
        inputs: &[InputDesc<'_>],
        speaker: Option<usize>,
        width: u32,
        height: u32,
    ) -> Vec<Option<Tile>> {
        let mut out = vec![None; inputs.len()];
        let n = inputs.len();
        let focus = self.focus_of(inputs, speaker);
        let Some(variant) = self.spec.variant.iter().find(|v| {
            v.min_inputs.is_none_or(|m| n >= m)
                && v.max_inputs.is_none_or(|m| n <= m)
                && v.focus.is_none_or(|f| f == focus.is_some())
        }) else {
            return out;
        };
        // The focus is kept out of "rest" only where an area shows it; otherwise it is one of
        // the others, not lost.
        let held_back = focus.filter(|_| variant.areas.iter().any(|a| a.take == Take::Focus));
        let mut placed = vec![false; n];
        let frame = (
            width.min(i32::MAX as u32) as i32,
            height.min(i32::MAX as u32) as i32,
        );
        for (ai, area) in variant.areas.iter().enumerate() {
            let members: Vec<usize> = match area.take {
                Take::Focus => focus.filter(|f| !placed[*f]).into_iter().collect(),
                Take::Rest => (0..n)
                    .filter(|i| !placed[*i] && Some(*i) != held_back)
                    .take(capacity(area))
                    .collect(),
            };
            let zorder = ai as u32 + 1;
            for (i, tile) in members
                .iter()
                .zip(arrange(area, members.len(), frame, zorder))
            {
                placed[*i] = true;
                out[*i] = tile;
            }
        }
        out
    }
}

/// How many inputs `area` holds.
fn capacity(area: &Area) -> usize {
    let grid = match (area.columns, area.rows) {
        (Some(c), Some(r)) => c.saturating_mul(r),
        _ => usize::MAX,
    };
    grid.min(area.max.unwrap_or(usize::MAX))
}

/// An even pixel edge for the position `v`, inside `0..=limit` (rounded down to even).
fn edge(v: f64, limit: i32) -> i32 {
    let e = ((v / 2.0).round() as i32).saturating_mul(2);
    e.clamp(0, limit - limit % 2)
}

/// Tiles for `n` inputs in `area` of a `frame` (width, height): row by row, cells equal.
fn arrange(area: &Area, n: usize, frame: (i32, i32), zorder: u32) -> Vec<Option<Tile>> {
    if n == 0 {
        return Vec::new();
    }
    // The fixed side keeps its count even with fewer inputs, so cells do not jump in size.
    let (cols, rows) = match (area.columns, area.rows) {
        (Some(c), Some(r)) => (c, r),
        (Some(c), None) => (c, n.div_ceil(c)),
        (None, Some(r)) => (n.div_ceil(r), r),
        (None, None) => {
            let c = (1..=n).find(|c| c * c >= n).unwrap_or(n);
            (c, n.div_ceil(c))
        }
    };
    let (fw, fh) = (f64::from(frame.0), f64::from(frame.1));
    let (ax, ay, aw, ah) = (area.x * fw, area.y * fh, area.w * fw, area.h * fh);
    let cw = (aw / cols as f64).min(area.cell_w.map_or(f64::MAX, |f| f * fw));
    let ch = (ah / rows as f64).min(area.cell_h.map_or(f64::MAX, |f| f * fh));
    let offset = |free: f64| match area.align {
        Align::Start => 0.0,
        Align::Center => free / 2.0,
        Align::End => free,
    };
    let used_rows = n.div_ceil(cols);
    let top = ay + offset(ah - ch * used_rows as f64);
    (0..n)
        .map(|i| {
            let (r, c) = (i / cols, i % cols);
            let in_row = cols.min(n - r * cols);
            let left = ax + offset(aw - cw * in_row as f64);
            // Both edges of a cell from the same expressions as its neighbours' edges: after
            // snapping, neighbours touch but never overlap.
            let (x0, x1) = (left + c as f64 * cw, left + (c + 1) as f64 * cw);
            let (y0, y1) = (top + r as f64 * ch, top + (r + 1) as f64 * ch);
            let (x, y) = (edge(x0, frame.0), edge(y0, frame.1));
            let (width, height) = (edge(x1, frame.0) - x, edge(y1, frame.1) - y);
            (width >= 2 && height >= 2).then_some(Tile {
                x,
                y,
                width,
                height,
                zorder,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: [&str; 12] = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];
    const FULL: (i32, i32, i32, i32) = (0, 0, 1280, 720);

    fn descs<'a>(names: &[&'a str]) -> Vec<InputDesc<'a>> {
        let desc = |n: &&'a str| InputDesc {
            name: n,
            is_screen: is_screen_name(n, "desktop"),
        };
        names.iter().map(desc).collect()
    }

    /// Where the built-in `layout` places `names` in 1280x720.
    fn place(layout: &str, names: &[&str], speaker: Option<usize>) -> Vec<Option<Tile>> {
        let l = Layout::builtin(layout).unwrap();
        l.place(&descs(names), speaker, 1280, 720)
    }

    fn rect(t: &Tile) -> (i32, i32, i32, i32) {
        (t.x, t.y, t.width, t.height)
    }

    /// Every input shown, even, inside `w` x `h`, no overlaps at one z-order; returns the tiles.
    fn sound(tiles: &[Option<Tile>], w: i32, h: i32) -> Vec<Tile> {
        let all: Vec<Tile> = tiles.iter().map(|t| t.expect("shown")).collect();
        for (i, t) in all.iter().enumerate() {
            let inside = t.x >= 0 && t.y >= 0 && t.x + t.width <= w && t.y + t.height <= h;
            let even = [t.x, t.y, t.width, t.height].iter().all(|v| v % 2 == 0);
            let big = t.width >= 2 && t.height >= 2 && t.zorder >= 1;
            assert!(inside && even && big, "{t:?}");
            for u in &all[i + 1..] {
                let apart = t.x >= u.x + u.width || u.x >= t.x + t.width;
                let apart = apart || t.y >= u.y + u.height || u.y >= t.y + t.height;
                assert!(u.zorder != t.zorder || apart, "{t:?} overlaps {u:?}");
            }
        }
        all
    }

    #[test]
    fn builtins_parse_and_are_named() {
        for n in Layout::builtin_names() {
            assert_eq!(Layout::builtin(n).expect(n).name(), *n);
        }
        assert!(Layout::builtin("nosuch").is_none());
    }

    #[test]
    fn grids_of_any_size_are_sound() {
        assert!(!Layout::builtin("grid").unwrap().follows_speaker());
        let shapes = [
            (1, 1, 1),
            (2, 2, 1),
            (3, 2, 2),
            (4, 2, 2),
            (5, 3, 2),
            (9, 3, 3),
        ];
        for (n, cols, rows) in shapes {
            let t = sound(&place("grid", &NAMES[..n], None), 1280, 720);
            let (w, h) = (1280 / cols, 720 / rows);
            let equal = |t: &Tile| (t.width - w).abs() <= 2 && (t.height - h).abs() <= 2;
            assert!(t.len() == n && t.iter().all(equal), "{n}: {t:?}");
        }
        let three = place("grid", &NAMES[..3], None);
        assert_eq!(rect(&three[0].unwrap()), (0, 0, 640, 360));
        assert_eq!(three[2].unwrap().x, 320, "the last row is centred");
        // Odd sizes, awkward counts, and a picture too small to hold anyone.
        let g = Layout::builtin("grid").unwrap();
        for n in 1..=12 {
            sound(&g.place(&descs(&NAMES[..n]), None, 641, 359), 641, 359);
        }
        let tiny = g.place(&descs(&NAMES[..2]), None, 1, 1);
        assert!(tiny.iter().all(Option::is_none));
        assert!(g.place(&[], None, 1280, 720).is_empty());
    }

    #[test]
    fn the_speaker_is_large_and_the_layout_reflows() {
        assert!(Layout::builtin("speaker").unwrap().follows_speaker());
        let t = sound(&place("speaker", &NAMES[..3], Some(1)), 1280, 720);
        assert_eq!(rect(&t[1]), (0, 0, 1280, 540));
        let below = t[0].y >= 540 && t[2].y >= 540 && t[0].x < t[2].x;
        assert!(below, "the others below, in order: {t:?}");
        assert_eq!(t[0].width, 320, "capped at a quarter of the width");
        // Nobody has spoken yet, or the speaker's index is stale: the first input is the focus.
        let t = place("speaker", &NAMES[..3], None);
        assert_eq!(t[0].unwrap().height, 540);
        let t = place("speaker", &NAMES[..2], Some(7));
        assert_eq!(t[0].unwrap().height, 540);
        // b (the speaker) left and c is speaking: the layout reflows around c.
        let t = sound(&place("speaker", &["a", "c"], Some(1)), 1280, 720);
        assert_eq!((t[1].height, t[0].y), (540, 540));
        let alone = place("speaker", &["a"], Some(0));
        assert_eq!(rect(&alone[0].unwrap()), FULL);
    }

    #[test]
    fn pip_draws_small_tiles_above_in_the_corner() {
        let t = sound(&place("pip", &NAMES[..4], Some(2)), 1280, 720);
        assert_eq!(rect(&t[2]), FULL);
        for s in [t[0], t[1], t[3]] {
            let small = (300..=330).contains(&s.width) && s.height <= 180;
            let corner = s.x > 900 && s.x + s.width <= 1280 && s.y > 150;
            assert!(s.zorder > t[2].zorder && small && corner, "{s:?}");
        }
        assert!(t[0].y < t[1].y && t[1].y < t[3].y, "stacked in join order");
        assert!(t[3].y + t[3].height > 690, "from the bottom corner");
    }

    #[test]
    fn screen_share_takes_the_large_area_or_a_grid_without_one() {
        assert!(!Layout::builtin("screen").unwrap().follows_speaker());
        let names = ["a", "Bob-Desktop", "c", "d-desktop"];
        let t = sound(&place("screen", &names, Some(0)), 1280, 720);
        assert_eq!(rect(&t[1]), (0, 0, 960, 720));
        for s in [t[0], t[2], t[3]] {
            assert!(s.x >= 960 && (s.width, s.height) == (320, 180), "{s:?}");
        }
        let alone = place("screen", &["x-desktop"], None);
        assert_eq!(rect(&alone[0].unwrap()), FULL);
        let no_screen = place("screen", &NAMES[..5], None);
        assert_eq!(no_screen, place("grid", &NAMES[..5], None));
        assert!(is_screen_name("Bob-DESKTOP", "desktop"));
        assert!(!is_screen_name("bob", "desktop") && !is_screen_name("desktop", ""));
    }

    #[test]
    fn typos_and_bad_values_are_refused_with_the_file_and_line() {
        // One line each: `what the error must say => the file`.
        let bad = [
            r#"line 2, column 84: unknown field `colums` => focus = "none"
                variant = [{ areas = [{ x = 0, y = 0, w = 1, h = 1, take = "rest", colums = 2 }] }]"#,
            r#"line 1, column 9: unknown variant `loud` => focus = "loud""#,
            r#"line 1, column 1: missing field `variant` => focus = "none""#,
            r#": no [[variant]] => focus = "none"
                variant = []"#,
            r#": variant 1: no areas => focus = "none"
                variant = [{ areas = [] }]"#,
            r#"variant 1, area 1: the area reaches beyond the picture => focus = "none"
                variant = [{ areas = [{ x = 0.5, y = 0, w = 0.6, h = 1, take = "rest" }] }]"#,
            r#"variant 1, area 1: cell_w must be above 0 => focus = "none"
                variant = [{ areas = [{ x = 0, y = 0, w = 1, h = 1, take = "rest", cell_w = 0 }] }]"#,
            r#"variant 1, area 1: take = "focus" in a layout with focus = "none" => focus = "none"
                variant = [{ areas = [{ x = 0, y = 0, w = 1, h = 1, take = "focus" }] }]"#,
            r#"variant 2: more than one area takes the focus => focus = "screen"
                [[variant]]
                focus = true
                areas = [{ x = 0, y = 0, w = 1, h = 1, take = "focus" }]
                [[variant]]
                areas = [
                  { x = 0, y = 0, w = 1, h = 1, take = "focus" },
                  { x = 0, y = 0, w = 1, h = 1, take = "focus" },
                ]"#,
            r#"the last [[variant]] must have no conditions => focus = "none"
                variant = [{ max_inputs = 2, areas = [{ x = 0, y = 0, w = 1, h = 1, take = "rest" }] }]"#,
        ];
        for case in bad {
            let (want, text) = case.split_once(" => ").unwrap();
            let e = Layout::parse("mine", text).unwrap_err();
            let named = e.starts_with("layouts/mine.toml: ");
            assert!(named && e.contains(want), "{e}\n  wanted: {want}");
        }
    }

    #[test]
    fn names_resolve_to_files_ours_and_wcs_classes() {
        let wcs = "com.flashphoner.media.mixer.video.presentation";
        let known = [
            (format!("{wcs}.GridLayout"), "grid"),
            (format!("{wcs}.CenterNoPaddingGridLayout"), "grid"),
            (format!("{wcs}.DesktopLayout"), "screen"),
            ("ScreenSharingLayout".into(), "screen"),
            ("Speaker".into(), "speaker"),
            ("pip".into(), "pip"),
        ];
        for (name, ours) in known {
            let l = Layout::resolve(&name, None).unwrap();
            assert_eq!(l.name(), ours, "{name}");
        }
        let e = Layout::resolve("nosuch", None).unwrap_err();
        let listed = e.contains("grid, speaker, pip, screen");
        assert!(e.contains("\"nosuch\"") && listed, "{e}");
        // An operator's folder: a new layout, a built-in one replaced, a broken one.
        let dir = std::env::temp_dir().join(format!("layouts-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let quarter = r#"focus = "none"
            variant = [{ areas = [{ x = 0, y = 0, w = 0.5, h = 0.5, take = "rest" }] }]"#;
        let broken = "focus = \"none\"\nvariants = 1";
        for (file, text) in [("quarter", quarter), ("grid", quarter), ("broken", broken)] {
            std::fs::write(dir.join(format!("{file}.toml")), text).unwrap();
        }
        for name in ["quarter", "grid"] {
            let l = Layout::resolve(name, Some(&dir)).unwrap();
            let t = l.place(&descs(&["a"]), None, 1280, 720);
            assert_eq!((l.name(), t[0].unwrap().width), (name, 640));
        }
        let e = Layout::resolve("broken", Some(&dir)).unwrap_err();
        let at = "broken.toml: line 2, column 1: unknown field `variants`";
        assert!(e.contains(at), "{e}");
        assert!(Layout::resolve("speaker", Some(&dir)).is_ok());
        assert!(Layout::resolve("../quarter", Some(&dir)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn areas_cap_pass_on_and_keep_an_unshown_focus() {
        let text = r#"focus = "speaker"
            [[variant]]
            areas = [
              { x = 0, y = 0, w = 0.5, h = 1, take = "rest", max = 2 },
              { x = 0.5, y = 0, w = 0.5, h = 1, take = "rest", columns = 1, rows = 2 },
            ]"#;
        let l = Layout::parse("cap", text).unwrap();
        let t = l.place(&descs(&NAMES[..6]), Some(3), 1280, 720);
        // No focus area: the speaker is one of the rest, in join order.
        let left = |t: &Option<Tile>| t.is_some_and(|t| t.x < 640 && t.zorder == 1);
        let right = |t: &Option<Tile>| t.is_some_and(|t| t.x >= 640 && t.zorder == 2);
        assert!(
            t[..2].iter().all(left) && t[2..4].iter().all(right),
            "{t:?}"
        );
        assert!(
            t[4].is_none() && t[5].is_none(),
            "beyond every area's capacity"
        );
    }
}
