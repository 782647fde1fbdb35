//! A real browser for tests: headless Chromium (Debian's `chromium`, installed by
//! scripts/install-prerequisites; KEG_CHROMIUM overrides the path) driven over the DevTools
//! protocol on `--remote-debugging-pipe` (fds 3 and 4, NUL-terminated JSON), so a test sees
//! every console message, uncaught exception and network request of a page, can evaluate
//! script in it and takes screenshots. No crate beyond serde_json and base64.

#![allow(dead_code)]

pub mod sample;

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// `file://` URL of a local file.
pub fn file_url(path: &std::path::Path) -> String {
    format!(
        "file://{}",
        path.canonicalize().expect("an existing file").display()
    )
}

const TIMEOUT: Duration = Duration::from_secs(60);

pub struct Browser {
    child: Child,
    to: std::io::PipeWriter,
    from: Receiver<Value>,
    next: u64,
    /// Every event received so far (method, params).
    pub events: Vec<Value>,
    _profile: tempfile::TempDir,
}

/// A page opened in the browser.
pub struct Page {
    session: String,
}

impl Browser {
    /// Starts Chromium; fails the test when it is missing.
    pub fn start() -> Browser {
        let bin = std::env::var("KEG_CHROMIUM").unwrap_or_else(|_| "chromium".to_string());
        let profile = tempfile::tempdir().expect("profile dir");
        let (chrome_in, to) = std::io::pipe().expect("pipe");
        let (from, chrome_out) = std::io::pipe().expect("pipe");
        let (rfd, wfd) = (chrome_in.as_raw_fd(), chrome_out.as_raw_fd());
        let mut cmd = Command::new(&bin);
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--mute-audio",
            "--remote-debugging-pipe",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Out of the way first, in case either end already is fd 3 or 4.
                let r = libc::fcntl(rfd, libc::F_DUPFD, 10);
                let w = libc::fcntl(wfd, libc::F_DUPFD, 10);
                if r < 0 || w < 0 || libc::dup2(r, 3) < 0 || libc::dup2(w, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("{bin} is needed (scripts/install-prerequisites installs chromium): {e}")
        });
        drop(chrome_in);
        drop(chrome_out);
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(from);
            loop {
                let mut message = Vec::new();
                match reader.read_until(0, &mut message) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        message.pop_if(|b| *b == 0);
                        if let Ok(value) = serde_json::from_slice::<Value>(&message)
                            && tx.send(value).is_err()
                        {
                            break;
                        }
                    }
                }
            }
        });
        Browser {
            child,
            to,
            from: rx,
            next: 0,
            events: Vec::new(),
            _profile: profile,
        }
    }

    /// Sends a command and waits for its answer; panics on a protocol error.
    pub fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            message["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&message).expect("json");
        bytes.push(0);
        self.to.write_all(&bytes).expect("write to chromium");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.from.recv_timeout(left) {
                Ok(v) if v["id"].as_u64() == Some(id) => {
                    if let Some(e) = v.get("error") {
                        panic!("{method}: {e}");
                    }
                    return v["result"].clone();
                }
                Ok(v) => self.events.push(v),
                Err(RecvTimeoutError::Timeout) => panic!("{method}: no answer in {TIMEOUT:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("{method}: chromium went away"),
            }
        }
    }

    /// Waits for an event of `session` named `method`.
    fn wait_event(&mut self, session: &str, method: &str) {
        if self
            .events
            .iter()
            .any(|e| e["method"] == method && e["sessionId"] == session)
        {
            return;
        }
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.from.recv_timeout(left) {
                Ok(v) => {
                    let hit = v["method"] == method && v["sessionId"] == session;
                    self.events.push(v);
                    if hit {
                        return;
                    }
                }
                Err(_) => panic!("no {method} in {TIMEOUT:?}"),
            }
        }
    }

    /// Opens `url` in a new page of `width` x `height` CSS pixels and waits for its load event.
    pub fn open(&mut self, url: &str, width: u32, height: u32) -> Page {
        let target = self.call(None, "Target.createTarget", json!({"url": "about:blank"}));
        let target_id = target["targetId"].as_str().expect("targetId").to_string();
        let attached = self.call(
            None,
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        );
        let session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_string();
        let s = Some(session.as_str());
        for domain in [
            "Page.enable",
            "Runtime.enable",
            "Log.enable",
            "Network.enable",
        ] {
            self.call(s, domain, json!({}));
        }
        self.call(
            s,
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        );
        self.call(s, "Page.navigate", json!({"url": url}));
        self.wait_event(&session, "Page.loadEventFired");
        Page { session }
    }

    /// The value of a script expression in the page (JSON-able).
    pub fn eval(&mut self, page: &Page, expression: &str) -> Value {
        let result = self.call(
            Some(&page.session),
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(e) = result.get("exceptionDetails") {
            panic!("{expression}: {e}");
        }
        result["result"]["value"].clone()
    }

    /// A PNG of the page; `full`: the whole page, not just the viewport.
    pub fn screenshot(&mut self, page: &Page, full: bool) -> Vec<u8> {
        use base64::Engine;
        let shot = self.call(
            Some(&page.session),
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": full}),
        );
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("data"))
            .expect("base64")
    }

    /// Console errors and warnings, uncaught exceptions and browser log errors so far.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        for e in &self.events {
            let p = &e["params"];
            match e["method"].as_str() {
                Some("Runtime.exceptionThrown") => out.push(format!(
                    "exception: {}",
                    p["exceptionDetails"]["exception"]["description"]
                        .as_str()
                        .unwrap_or(&p["exceptionDetails"]["text"].to_string())
                )),
                Some("Runtime.consoleAPICalled")
                    if matches!(p["type"].as_str(), Some("error" | "warning" | "assert")) =>
                {
                    out.push(format!("console.{}: {}", p["type"], p["args"]))
                }
                Some("Log.entryAdded")
                    if matches!(p["entry"]["level"].as_str(), Some("error" | "warning")) =>
                {
                    out.push(format!("log: {}", p["entry"]["text"]))
                }
                _ => {}
            }
        }
        out
    }

    /// URLs the pages asked for, other than file:, data: and about: ones.
    pub fn network_requests(&self) -> Vec<String> {
        self.events
            .iter()
            .filter(|e| e["method"] == "Network.requestWillBeSent")
            .filter_map(|e| e["params"]["request"]["url"].as_str())
            .filter(|u| {
                !(u.starts_with("file:") || u.starts_with("data:") || u.starts_with("about:"))
            })
            .map(str::to_string)
            .collect()
    }

    /// Pixel statistics of a PNG, decoded by the browser itself in a blank page: the share
    /// of pixels that are not (near) white, the number of distinct colours, and the share of
    /// pixels close to `rgb`.
    pub fn pixels(&mut self, png: &[u8], rgb: (u8, u8, u8)) -> Pixels {
        use base64::Engine;
        let page = self.open("about:blank", 200, 200);
        let data = base64::engine::general_purpose::STANDARD.encode(png);
        let script = format!(
            r#"new Promise(function (done) {{
  var img = new Image();
  img.onload = function () {{
    var c = document.createElement("canvas"); c.width = img.width; c.height = img.height;
    var g = c.getContext("2d"); g.drawImage(img, 0, 0);
    var d = g.getImageData(0, 0, c.width, c.height).data, ink = 0, near = 0, colours = {{}};
    for (var i = 0; i < d.length; i += 4) {{
      if (d[i] < 235 || d[i + 1] < 235 || d[i + 2] < 235) ink++;
      if (Math.abs(d[i] - {r}) < 24 && Math.abs(d[i + 1] - {g}) < 24 && Math.abs(d[i + 2] - {b}) < 24) near++;
      colours[(d[i] << 16) | (d[i + 1] << 8) | d[i + 2]] = 1;
    }}
    var n = d.length / 4;
    done({{width: c.width, height: c.height, ink: ink / n, near: near / n, colours: Object.keys(colours).length}});
  }};
  img.onerror = function () {{ done(null); }};
  img.src = "data:image/png;base64,{data}";
}})"#,
            r = rgb.0,
            g = rgb.1,
            b = rgb.2
        );
        let v = self.eval(&page, &script);
        assert!(
            !v.is_null(),
            "the screenshot is not a PNG the browser can decode"
        );
        Pixels {
            width: v["width"].as_u64().unwrap_or(0),
            height: v["height"].as_u64().unwrap_or(0),
            ink: v["ink"].as_f64().unwrap_or(0.0),
            near: v["near"].as_f64().unwrap_or(0.0),
            colours: v["colours"].as_u64().unwrap_or(0),
        }
    }
}

#[derive(Debug)]
pub struct Pixels {
    pub width: u64,
    pub height: u64,
    /// Share of pixels that are not white.
    pub ink: f64,
    /// Share of pixels near the colour asked for.
    pub near: f64,
    pub colours: u64,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let mut bytes =
            serde_json::to_vec(&json!({"id": 0, "method": "Browser.close"})).unwrap_or_default();
        bytes.push(0);
        let _ = self.to.write_all(&bytes);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
