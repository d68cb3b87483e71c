//! A client for the engine's socket: JSON-RPC 2.0, or the bincode fast path.
//!
//! Over the Unix socket nothing more is needed; over TCP (`api.tcp`) the
//! client presents the api token first (`coproc_auth`), which
//! [`Client::connect_tcp`] and [`FastClient::connect_tcp`] do.
//!
//! ```no_run
//! use coprocessor::client::Client;
//! use coprocessor_actors::wire::{Call, NoParams, StatusReply};
//! let mut client = Client::connect("data/coprocessor.ipc".as_ref())?;
//! let status: StatusReply = client.call(Call::Status(NoParams {}))?;
//! println!("operator {:?}", status.operator);
//! # Ok::<(), coprocessor::client::ClientError>(())
//! ```

use coprocessor_actors::fast_frame;
use coprocessor_actors::wire::{
    AuthParams, Call, FastRequest, FastResponse, JobFilter, JobResult, Method, Reply, RpcError, SubscribeParams,
    FAST_PATH_MAGIC,
};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket could not be reached.
    #[error("cannot connect to {path}: {source} (is the engine running? start it with `coprocessor run`)")]
    Connect {
        /// The socket.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TCP address could not be reached.
    #[error("cannot connect to {addr}: {source} (is the engine running with api.tcp set to it?)")]
    ConnectTcp {
        /// The address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No api token to present over TCP.
    #[error("{0}")]
    NoToken(String),
    /// The engine refused the api token (or the first request).
    #[error("the engine refused the api token: {}", .0.message)]
    Unauthorized(RpcError),
    /// The connection failed mid-call.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The engine answered with an error.
    #[error("{}", .0.message)]
    Rpc(RpcError),
    /// The engine's answer did not decode.
    #[error("malformed response: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The JSON-RPC error code, if the engine answered with an error.
    pub fn code(&self) -> Option<i32> {
        match self {
            ClientError::Rpc(err) | ClientError::Unauthorized(err) => Some(err.code),
            _ => None,
        }
    }
}

/// A connection to the engine: its Unix socket or its TCP address.
#[derive(Debug)]
pub enum Stream {
    /// The Unix socket.
    Unix(UnixStream),
    /// The TCP address (`api.tcp`).
    Tcp(TcpStream),
}

impl Stream {
    fn try_clone(&self) -> std::io::Result<Stream> {
        Ok(match self {
            Stream::Unix(s) => Stream::Unix(s.try_clone()?),
            Stream::Tcp(s) => Stream::Tcp(s.try_clone()?),
        })
    }

    fn set_read_timeout(&self, limit: Option<std::time::Duration>) -> std::io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(limit),
            Stream::Tcp(s) => s.set_read_timeout(limit),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Unix(s) => s.flush(),
            Stream::Tcp(s) => s.flush(),
        }
    }
}

/// A JSON-RPC connection.
#[derive(Debug)]
pub struct Client {
    reader: BufReader<Stream>,
    writer: Stream,
    next_id: u64,
}

fn connect(path: &Path) -> Result<Stream, ClientError> {
    UnixStream::connect(path).map(Stream::Unix).map_err(|source| ClientError::Connect { path: path.to_owned(), source })
}

fn connect_tcp(addr: &str) -> Result<Stream, ClientError> {
    let stream =
        TcpStream::connect(addr).map_err(|source| ClientError::ConnectTcp { addr: addr.to_owned(), source })?;
    stream.set_nodelay(true)?;
    Ok(Stream::Tcp(stream))
}

impl Client {
    /// Connects to the socket at `path`.
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        Client::over(connect(path)?)
    }

    /// Connects to the engine's TCP address (`api.tcp`) and presents
    /// `token` (the contents of `<data_dir>/api.token`).
    pub fn connect_tcp(addr: &str, token: &str) -> Result<Client, ClientError> {
        let mut client = Client::over(connect_tcp(addr)?)?;
        let auth = Call::Auth(AuthParams { token: token.trim().to_owned() });
        match client.call_json(&auth) {
            Ok(_) => Ok(client),
            Err(ClientError::Rpc(err)) => Err(ClientError::Unauthorized(err)),
            Err(err) => Err(err),
        }
    }

    fn over(stream: Stream) -> Result<Client, ClientError> {
        let writer = stream.try_clone()?;
        Ok(Client { reader: BufReader::new(stream), writer, next_id: 1 })
    }

    /// Sends a raw JSON-RPC request and returns the raw response object.
    pub fn raw(&mut self, method: &str, params: serde_json::Value) -> Result<serde_json::Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let request = serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut line = serde_json::to_vec(&request).map_err(|err| ClientError::Protocol(err.to_string()))?;
        line.push(b'\n');
        self.writer.write_all(&line)?;
        let mut response = String::new();
        if self.reader.read_line(&mut response)? == 0 {
            return Err(ClientError::Protocol("the engine closed the connection".into()));
        }
        serde_json::from_str(&response).map_err(|err| ClientError::Protocol(err.to_string()))
    }

    /// Calls a method and returns its `result` as JSON.
    pub fn call_json(&mut self, call: &Call) -> Result<serde_json::Value, ClientError> {
        let (method, params) = Method::encode(call);
        let mut response = self.raw(method, params)?;
        if let Some(error) = response.get_mut("error") {
            let error: RpcError =
                serde_json::from_value(error.take()).map_err(|err| ClientError::Protocol(err.to_string()))?;
            return Err(ClientError::Rpc(error));
        }
        response.get_mut("result").map(serde_json::Value::take).ok_or_else(|| ClientError::Protocol("no result".into()))
    }

    /// Calls a method and decodes its result as `T`.
    pub fn call<T: serde::de::DeserializeOwned>(&mut self, call: Call) -> Result<T, ClientError> {
        let result = self.call_json(&call)?;
        serde_json::from_value(result).map_err(|err| ClientError::Protocol(err.to_string()))
    }

    /// Subscribes this connection to the status changes of the jobs
    /// `filter` names (`coproc_subscribe`); it then only reads them.
    pub fn subscribe(mut self, filter: JobFilter) -> Result<Subscription, ClientError> {
        let id: String = self.call(Call::Subscribe(SubscribeParams("jobs".into(), filter)))?;
        Ok(Subscription { client: self, id })
    }
}

/// A connection that reads a subscription's notifications.
#[derive(Debug)]
pub struct Subscription {
    client: Client,
    id: String,
}

impl Subscription {
    /// The subscription's ID.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// How long [`Subscription::next_change`] waits for a change before it
    /// fails with an I/O error (`None`: for ever, the default).
    pub fn set_timeout(&self, limit: Option<std::time::Duration>) -> Result<(), ClientError> {
        Ok(self.client.reader.get_ref().set_read_timeout(limit)?)
    }

    /// The next status change: the job's `coproc_getResult` object. The
    /// engine's last notification to a subscription it dropped is an
    /// `Rpc` error (code `-32013`).
    pub fn next_change(&mut self) -> Result<JobResult, ClientError> {
        let mut line = String::new();
        if self.client.reader.read_line(&mut line)? == 0 {
            return Err(ClientError::Protocol("the engine closed the connection".into()));
        }
        let mut message: serde_json::Value =
            serde_json::from_str(&line).map_err(|err| ClientError::Protocol(err.to_string()))?;
        let params = message.get_mut("params").filter(|params| params["subscription"] == self.id.as_str());
        let Some(params) = params else {
            return Err(ClientError::Protocol(format!("not a notification of subscription {}: {line}", self.id)));
        };
        if let Some(error) = params.get_mut("error") {
            let error = serde_json::from_value(error.take()).map_err(|err| ClientError::Protocol(err.to_string()))?;
            return Err(ClientError::Rpc(error));
        }
        serde_json::from_value(params["result"].take()).map_err(|err| ClientError::Protocol(err.to_string()))
    }
}

/// A bincode fast-path connection, with pipelining: send many, then read.
#[derive(Debug)]
pub struct FastClient {
    reader: BufReader<Stream>,
    writer: std::io::BufWriter<Stream>,
    next_id: u64,
}

impl FastClient {
    /// Connects and announces the fast path.
    pub fn connect(path: &Path) -> Result<FastClient, ClientError> {
        FastClient::over(connect(path)?)
    }

    /// Connects to the engine's TCP address, announces the fast path and
    /// presents `token`: the first frame is a `Call::Auth`.
    pub fn connect_tcp(addr: &str, token: &str) -> Result<FastClient, ClientError> {
        let mut client = FastClient::over(connect_tcp(addr)?)?;
        match client.call(Call::Auth(AuthParams { token: token.trim().to_owned() })) {
            Ok(_) => Ok(client),
            Err(ClientError::Rpc(err)) => Err(ClientError::Unauthorized(err)),
            Err(err) => Err(err),
        }
    }

    fn over(stream: Stream) -> Result<FastClient, ClientError> {
        let mut writer = std::io::BufWriter::new(stream.try_clone()?);
        writer.write_all(&[FAST_PATH_MAGIC])?;
        Ok(FastClient { reader: BufReader::new(stream), writer, next_id: 0 })
    }

    /// Queues a request; returns its id. Call [`FastClient::flush`] to send.
    pub fn send(&mut self, call: Call) -> Result<u64, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        self.writer.write_all(&fast_frame(&FastRequest { id, call }))?;
        Ok(id)
    }

    /// Sends queued requests.
    pub fn flush(&mut self) -> Result<(), ClientError> {
        Ok(self.writer.flush()?)
    }

    /// Reads the next response (responses come in completion order).
    pub fn recv(&mut self) -> Result<(u64, Result<Reply, RpcError>), ClientError> {
        let mut len = [0u8; 4];
        self.reader.read_exact(&mut len)?;
        let mut frame = vec![0u8; u32::from_le_bytes(len) as usize];
        self.reader.read_exact(&mut frame)?;
        let (response, _): (FastResponse, _) = bincode::serde::decode_from_slice(&frame, bincode::config::standard())
            .map_err(|err| ClientError::Protocol(err.to_string()))?;
        Ok((response.id, response.result))
    }

    /// One call, waiting for its answer.
    pub fn call(&mut self, call: Call) -> Result<Reply, ClientError> {
        let id = self.send(call)?;
        self.flush()?;
        loop {
            let (got, result) = self.recv()?;
            if got == id {
                return result.map_err(ClientError::Rpc);
            }
        }
    }
}
