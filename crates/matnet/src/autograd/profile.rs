//! Opt-in recording of the ops a computation runs, with shapes and times
//! (`matnet explain` prints it). When no profile is active the cost is one
//! thread-local check per op.

use std::cell::RefCell;
use std::time::Instant;

use super::{Op, OpKind};
use crate::shape::Shape;
use crate::tensor::{Tensor, TensorId};

/// Which pass an event belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// An op run by the forward computation.
    Forward,
    /// The gradient rule of one graph node, run by `backward`.
    Backward,
}

/// One recorded op.
#[derive(Clone, Debug)]
pub struct OpEvent {
    /// Forward op, or the node whose gradient rule ran.
    pub phase: Phase,
    /// Which op ([`OpKind::name`] gives `matmul`, `relu`, ...).
    pub op: OpKind,
    /// Identity and shape of each input.
    pub inputs: Vec<(TensorId, Shape)>,
    /// Identity and shape of the output (for backward: of the node).
    pub output: (TensorId, Shape),
    /// Backward only: which inputs received a gradient.
    pub grads: Vec<bool>,
    /// Wall time. Forward: since the previous event (the kernel and any glue
    /// between ops); backward: the node's whole gradient rule.
    pub seconds: f64,
}

struct Recorder {
    events: Vec<OpEvent>,
    last: Instant,
    // Ops run inside a backward rule belong to that rule's event.
    in_backward: bool,
}

thread_local! {
    static RECORDER: RefCell<Option<Recorder>> = const { RefCell::new(None) };
}

/// Runs `f` and returns its result with the ops it ran, in order.
pub fn profile<R>(f: impl FnOnce() -> R) -> (R, Vec<OpEvent>) {
    RECORDER.with(|r| {
        *r.borrow_mut() = Some(Recorder {
            events: Vec::new(),
            last: Instant::now(),
            in_backward: false,
        })
    });
    let out = f();
    let events = RECORDER
        .with(|r| r.borrow_mut().take())
        .map(|r| r.events)
        .unwrap_or_default();
    (out, events)
}

fn active() -> bool {
    RECORDER.with(|r| r.borrow().as_ref().is_some_and(|r| !r.in_backward))
}

pub(crate) fn record_forward(op: &Op, out: TensorId, shape: &Shape) {
    if !active() {
        return;
    }
    let inputs = op
        .inputs()
        .iter()
        .map(|t| (t.id(), t.shape().clone()))
        .collect();
    RECORDER.with(|r| {
        if let Some(r) = r.borrow_mut().as_mut() {
            let now = Instant::now();
            r.events.push(OpEvent {
                phase: Phase::Forward,
                op: op.kind(),
                inputs,
                output: (out, shape.clone()),
                grads: Vec::new(),
                seconds: now.duration_since(r.last).as_secs_f64(),
            });
            r.last = now;
        }
    });
}

/// Times one node's gradient rule when a profile is active.
pub(crate) fn time_backward(
    node: &Tensor,
    op: &Op,
    f: impl FnOnce() -> Vec<Option<Tensor>>,
) -> Vec<Option<Tensor>> {
    if !active() {
        return f();
    }
    RECORDER.with(|r| r.borrow_mut().as_mut().map(|r| r.in_backward = true));
    let t = Instant::now();
    let grads = f();
    let seconds = t.elapsed().as_secs_f64();
    RECORDER.with(|r| {
        if let Some(r) = r.borrow_mut().as_mut() {
            r.in_backward = false;
            r.events.push(OpEvent {
                phase: Phase::Backward,
                op: op.kind(),
                inputs: op
                    .inputs()
                    .iter()
                    .map(|t| (t.id(), t.shape().clone()))
                    .collect(),
                output: (node.id(), node.shape().clone()),
                grads: grads.iter().map(Option::is_some).collect(),
                seconds,
            });
            r.last = Instant::now();
        }
    });
    grads
}
