//! One Edge Thing: its Lua state lives on a dedicated thread that runs one job at a time
//! (service call, property write, tasks); the async side talks to it through a bounded
//! queue and reads property values from the shared [`Model`] without entering Lua.

use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Map, Value as Json};
use tokio::sync::{Notify, oneshot};

use crate::config::{Config, ThingConfig};
use crate::error::Error;
use crate::model::{Model, ServiceDef};
use crate::sandbox;
use crate::template::load;
use crate::worker::{LuaThing, worker};

/// Jobs waiting for a thing's Lua thread; more are refused with 503.
const JOB_QUEUE: usize = 64;

/// A reply produced by a Lua call.
#[derive(Debug)]
pub(crate) enum Reply {
    /// 200 with an empty body (content type JSON).
    Empty,
    /// 200 with a JSON body.
    Json(Json),
    /// A status with a plain message body (what the ThingWorx LSR sends on errors).
    Text(u16, String),
}

pub(crate) enum Job {
    Service {
        name: String,
        headers: Vec<(String, String)>,
        query: Vec<(String, String)>,
        data: Map<String, Json>,
        reply: oneshot::Sender<Reply>,
    },
    Write {
        values: Vec<(String, Json)>,
        reply: oneshot::Sender<Reply>,
    },
    Tasks {
        reply: oneshot::Sender<()>,
    },
}

/// Handle on a running thing.
pub(crate) struct Thing {
    pub config: ThingConfig,
    pub services: Vec<ServiceDef>,
    model: Arc<Mutex<Model>>,
    jobs: SyncSender<Job>,
    /// Woken when the driver should act before its next tick (NotifyPropertyUpdate).
    pub wake: Notify,
    reply_timeout: Duration,
}

impl Thing {
    /// Starts the Lua thread, loads the template and waits until it is ready.
    pub async fn start(
        config: &Config,
        tc: ThingConfig,
        events: Option<sandbox::EventSink>,
    ) -> Result<Arc<Thing>, Error> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(JOB_QUEUE);
        let (ready_tx, ready_rx) = oneshot::channel();
        let limits = config.limits;
        let dirs = config.template_dirs.clone();
        let mut p_data = config.globals.clone();
        p_data.extend(tc.p_data.clone());
        for (k, v) in [
            ("scanRate", tc.scan_rate),
            ("taskRate", tc.task_rate),
            ("scanRateResolution", tc.scan_rate_resolution),
            ("keepAliveRate", tc.keep_alive_rate),
            ("requestTimeout", tc.request_timeout),
            ("registerRate", tc.register_rate),
        ] {
            p_data.insert(k.into(), Json::from(v));
        }
        p_data.insert(
            "maxConcurrentPropertyUpdates".into(),
            Json::from(tc.max_concurrent_property_updates),
        );
        p_data.insert("register".into(), Json::Bool(tc.register));
        p_data.insert("useShapes".into(), Json::Bool(tc.use_shapes));
        p_data.insert(
            "defaultPushType".into(),
            Json::from(tc.default_push_type.name()),
        );
        let tc2 = tc.clone();
        std::thread::Builder::new()
            .name(format!("lua-{}", tc.name))
            .spawn(move || {
                let loaded = load(&limits, &p_data, &dirs, &tc2, events);
                match loaded {
                    Ok((lua, budget, me, model, services, names)) => {
                        let model = Arc::new(Mutex::new(model));
                        let _ = ready_tx.send(Ok((model.clone(), services)));
                        let t = LuaThing {
                            lua,
                            budget,
                            me,
                            model,
                            names,
                            memory_limit: limits.memory,
                        };
                        worker(t, rx, &tc2.name);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })
            .map_err(|e| Error::Thing {
                thing: tc.name.clone(),
                reason: format!("cannot start Lua thread: {e}"),
            })?;
        let (model, services) = ready_rx.await.map_err(|_| Error::Thing {
            thing: tc.name.clone(),
            reason: "Lua thread ended while loading".into(),
        })??;
        let reply_timeout = Duration::from_millis(tc.request_timeout);
        Ok(Arc::new(Thing {
            config: tc,
            services,
            model,
            jobs: tx,
            wake: Notify::new(),
            reply_timeout,
        }))
    }

    /// Locks the model (never held across an await).
    pub fn model(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn submit(&self, job: Job) -> Result<(), Reply> {
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => Reply::Text(503, "Script is busy, try again later".into()),
            TrySendError::Disconnected(_) => Reply::Text(503, "Script is not running".into()),
        })
    }

    async fn wait(&self, rx: oneshot::Receiver<Reply>) -> Reply {
        match tokio::time::timeout(self.reply_timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Reply::Text(500, "Script ended without answering".into()),
            Err(_) => Reply::Text(504, "Script did not answer in time".into()),
        }
    }

    /// Calls a service defined in Lua.
    pub async fn call_service(
        &self,
        name: String,
        headers: Vec<(String, String)>,
        query: Vec<(String, String)>,
        data: Map<String, Json>,
    ) -> Reply {
        let (reply, rx) = oneshot::channel();
        if let Err(r) = self.submit(Job::Service {
            name,
            headers,
            query,
            data,
            reply,
        }) {
            return r;
        }
        self.wait(rx).await
    }

    /// Writes property values (already checked against their base types).
    pub async fn write(&self, values: Vec<(String, Json)>) -> Reply {
        let (reply, rx) = oneshot::channel();
        if let Err(r) = self.submit(Job::Write { values, reply }) {
            return r;
        }
        self.wait(rx).await
    }

    /// Runs every task once; returns when done (or after the reply timeout).
    pub async fn run_tasks(&self) {
        let (reply, rx) = oneshot::channel();
        if self.jobs.try_send(Job::Tasks { reply }).is_err() {
            tracing::warn!(thing = %self.config.name, "task run skipped: script busy");
            return;
        }
        if tokio::time::timeout(self.reply_timeout, rx).await.is_err() {
            tracing::warn!(thing = %self.config.name, "tasks did not finish in time");
        }
    }

    /// The service definition of `name`, if the template declared one.
    pub fn service_def(&self, name: &str) -> Option<&ServiceDef> {
        self.services.iter().find(|s| s.name == name)
    }
}
