//! The whole stack in one process: upstream-sim (standing in for the LLM
//! server and Qdrant), the embeddings service, the knowledge API and the
//! learner reading its telemetry, each on its own port, stopped together
//! by one Ctrl-C.

use std::net::SocketAddr;

use buttress::BoxError;
use buttress::health::Outcome;
use tokio::net::TcpListener;

use crate::embeddings::{Embeddings, EmbeddingsConfig};
use crate::knowledge::{KnowledgeApi, KnowledgeConfig};
use crate::learner::{Learner, LearnerConfig};
use crate::serving;
use crate::sim::{Sim, SimConfig};

/// Where each service of a running stack listens.
#[derive(Debug, Clone, Copy)]
pub struct Addresses {
    /// The knowledge API.
    pub knowledge: SocketAddr,
    /// The embeddings service.
    pub embeddings: SocketAddr,
    /// upstream-sim.
    pub sim: SocketAddr,
    /// The learner.
    pub learner: SocketAddr,
}

/// The stack's settings: the knowledge API's (its upstream URLs are
/// replaced by the services started here) and the first port; the
/// embeddings service takes the next, upstream-sim the one after, and the
/// learner the one after that.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// The knowledge API's settings.
    pub knowledge: KnowledgeConfig,
    /// The learner's settings (it reads the knowledge API's journal
    /// directory, whatever these say).
    pub learner: LearnerConfig,
    /// The simulator's seed and faults.
    pub sim: SimConfig,
}

/// Binds the four listeners: the knowledge API's address, then the
/// embeddings service, the simulator and the learner on the next three
/// ports of the same host (or any free ports when the first is 0).
pub async fn bind(first: SocketAddr) -> std::io::Result<[TcpListener; 4]> {
    let next = |n: u16| -> std::io::Result<SocketAddr> {
        let mut a = first;
        if a.port() != 0 {
            let port = first.port().checked_add(n).ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!(
                        "PORT {} leaves no room for the next three services' ports",
                        first.port()
                    ),
                )
            })?;
            a.set_port(port);
        }
        Ok(a)
    };
    Ok([
        serving::bind(first).await?,
        serving::bind(next(1)?).await?,
        serving::bind(next(2)?).await?,
        serving::bind(next(3)?).await?,
    ])
}

/// A running stack.
#[derive(Debug)]
pub struct Running {
    /// Where each service listens.
    pub addresses: Addresses,
    /// The simulator, to stage faults.
    pub sim: Sim,
    /// The knowledge API.
    pub knowledge: KnowledgeApi,
    /// The learner.
    pub learner: Learner,
    shutdowns: Vec<buttress::health::Shutdown>,
    tasks: tokio::task::JoinSet<Outcome>,
    embeddings: tokio::sync::Mutex<EmbeddingsServer>,
}

/// The embeddings service's server, which [`Running::restart_embeddings`]
/// replaces.
#[derive(Debug)]
struct EmbeddingsServer {
    shutdown: buttress::health::Shutdown,
    task: tokio::task::JoinHandle<Outcome>,
}

/// Serves a new embeddings service on `listener`, its model loading
/// (after `load_delay`) in the background.
fn start_embeddings(listener: TcpListener, load_delay: std::time::Duration) -> EmbeddingsServer {
    let embeddings = Embeddings::new(EmbeddingsConfig {
        load_delay,
        ..EmbeddingsConfig::default()
    });
    let shutdown = embeddings.shutdown();
    let router = crate::embeddings::router(embeddings.clone());
    let task = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move { serving::serve(listener, router, &shutdown).await })
    };
    tokio::spawn(async move {
        if let Err(e) = embeddings.load().await {
            tracing::error!(error = %e, "the embeddings model did not load");
        }
    });
    EmbeddingsServer { shutdown, task }
}

/// Starts the stack on `listeners` (from [`bind`]).
pub async fn start(config: StackConfig, listeners: [TcpListener; 4]) -> Result<Running, BoxError> {
    let [
        knowledge_listener,
        embeddings_listener,
        sim_listener,
        learner_listener,
    ] = listeners;
    let addresses = Addresses {
        knowledge: knowledge_listener.local_addr()?,
        embeddings: embeddings_listener.local_addr()?,
        sim: sim_listener.local_addr()?,
        learner: learner_listener.local_addr()?,
    };
    let local = |addr: SocketAddr, path: &str| {
        let host = if addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            addr.ip().to_string()
        };
        format!("http://{host}:{}{path}", addr.port())
    };
    let mut tasks = tokio::task::JoinSet::new();
    let mut shutdowns = Vec::new();

    let sim = Sim::new(config.sim);
    let sim_shutdown = buttress::health::Shutdown::new(buttress::health::Readiness::new());
    {
        let (sim, stop) = (sim.clone(), sim_shutdown.signalled());
        tasks.spawn(async move {
            if let Err(e) = crate::sim::serve(sim_listener, sim, stop).await {
                tracing::error!(error = %e, "upstream-sim failed");
            }
            Outcome::Drained
        });
    }
    shutdowns.push(sim_shutdown);

    let embeddings = start_embeddings(embeddings_listener, std::time::Duration::ZERO);

    let mut kc = config.knowledge;
    let mut lc = config.learner;
    lc.listen = addresses.learner;
    lc.journal_dir = kc.journal_dir.clone();
    kc.listen = addresses.knowledge;
    kc.embeddings_url = local(addresses.embeddings, "");
    kc.llm_url = local(addresses.sim, "/llm");
    kc.qdrant_url = local(addresses.sim, "/qdrant");
    let knowledge = KnowledgeApi::new(kc)?;
    let shutdown = knowledge.shutdown();
    let router = knowledge.router();
    {
        let shutdown = shutdown.clone();
        tasks.spawn(async move { serving::serve(knowledge_listener, router, &shutdown).await });
    }
    let startup = knowledge.spawn_startup();
    tokio::spawn(async move {
        if let Ok(Err(e)) = startup.await {
            tracing::error!(error = %e, "/readyz stays 503");
        }
    });
    shutdowns.push(shutdown);

    let learner = Learner::new(lc)?;
    let shutdown = learner.shutdown();
    let router = learner.router();
    {
        let shutdown = shutdown.clone();
        tasks.spawn(async move { serving::serve(learner_listener, router, &shutdown).await });
    }
    drop(learner.spawn());
    shutdowns.push(shutdown);

    Ok(Running {
        addresses,
        sim,
        knowledge,
        learner,
        shutdowns,
        tasks,
        embeddings: tokio::sync::Mutex::new(embeddings),
    })
}

impl Running {
    /// Restarts the embeddings service as a deployment would: the old one
    /// drains and stops, a new one takes its port and answers `503`
    /// "loading" until its model has loaded, `load_delay` later.
    pub async fn restart_embeddings(
        &self,
        load_delay: std::time::Duration,
    ) -> Result<(), BoxError> {
        let mut server = self.embeddings.lock().await;
        server.shutdown.trigger();
        (&mut server.task).await?;
        let listener = serving::bind(self.addresses.embeddings).await?;
        *server = start_embeddings(listener, load_delay);
        Ok(())
    }

    /// Begins every service's shutdown, all at once (each finishes its
    /// requests in flight within its grace period).
    pub fn stop(&self) {
        for s in self.shutdowns.iter().rev() {
            s.trigger();
        }
        if let Ok(server) = self.embeddings.try_lock() {
            server.shutdown.trigger();
        }
    }

    /// Waits for every service to stop (after [`stop`](Self::stop)); the
    /// worst outcome.
    pub async fn wait(mut self) -> Outcome {
        let mut worst = Outcome::Drained;
        let server = self.embeddings.into_inner();
        if let Ok(outcome) = server.task.await
            && outcome.exit_code() > worst.exit_code()
        {
            worst = outcome;
        }
        while let Some(done) = self.tasks.join_next().await {
            if let Ok(outcome) = done
                && outcome.exit_code() > worst.exit_code()
            {
                worst = outcome;
            }
        }
        worst
    }
}
