"""The names trialforge gives things in MLflow: tags, artifact paths, and the epoch marker."""

TAG_SWEEP = "trialforge.sweep_id"
TAG_TRIAL = "trialforge.trial_id"
TAG_KIND = "trialforge.kind"  # "sweep" or "trial"
TAG_STATE = "trialforge.state"  # a TrialState value (train.contract), or the sweep's state
TAG_REASON = "trialforge.reason"
TAG_FAILURE = "trialforge.failure"  # diverged, oom, worker_lost or code_error (train.failures)
TAG_BEST_EPOCH = "trialforge.best_epoch"
TAG_NODE = "trialforge.node_id"  # the Ray node a trial (or its rank 0) ran on
TAG_STAGE = "trialforge.stage"  # search, or confirm (`search.confirm`)
TAG_CONFIG = "trialforge.config_id"  # a trial's knobs without its seed (search.confirm)
TAG_SEED = "trialforge.seed"
BEST_CHECKPOINT_DIR = "best_checkpoint"
PARETO_FRONT_FILE = "pareto_front.json"
# A metric every epoch of every task logs: its last step is the last epoch logged.
EPOCH_MARKER = "epoch_seconds"
TAG_EXPLOIT = "trialforge.exploit"  # pbt/pb2: .<n> = {from_trial, from_epoch, config} as JSON
TAG_FEASIBLE = "trialforge.feasible"  # search.constraints: "true", or "false: <why>"
TAG_ORIGIN = "trialforge.origin"  # search.warm_start: the sweep and trial a point came from
