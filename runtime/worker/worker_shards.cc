// The reducer shards a worker hosts: storing pushed runs, serving parameter pulls, reducing a
// step and writing the shard's checkpoint file.
#include "runtime/worker/worker_impl.h"

namespace mrtrain::runtime {

Result<ShardRef> WorkerService::Impl::Shard(uint64_t job_id, int64_t shard) {
  std::shared_ptr<WorkerJob> job = FindJob(job_id);
  if (!job) return NotFoundError("job " + std::to_string(job_id) + " is not running here");
  MRTRAIN_ASSIGN_OR_RETURN(std::shared_ptr<TrainingParts> parts, job->Training());
  auto it = parts->shards.find(shard);
  if (it == parts->shards.end()) {
    return NotFoundError("reducer shard " + std::to_string(shard) + " of job " +
                         std::to_string(job_id) + " is not hosted here");
  }
  HostedShard* hosted = it->second.get();
  return ShardRef{std::move(parts), hosted};
}

void WorkerService::Impl::AcceptPush(const std::shared_ptr<Connection>& from,
                                     std::string payload) {
  auto push = msg::DecodeAs<msg::PushRun>(payload);
  payload = std::string();
  if (!push.ok()) {
    log_->error("bad PushRun from {}: {}; closing", from->peer(), push.status().ToString());
    return from->Close();
  }
  msg::PushAck ack{push->job_id, push->step, push->partition, push->shard, push->attempt, 0, ""};
  Result<ShardRef> shard = Shard(push->job_id, push->shard);
  if (!shard.ok()) {
    ack.error = shard.status().message();
  } else if (Crc32c(push->values.data(), push->values.size() * sizeof(float)) !=
             push->values_crc32c) {
    ack.error = "the run of partition " + std::to_string(push->partition) + " for step " +
                std::to_string(push->step) + " fails its checksum";
    log_->warn("refusing a push from {}: {}", from->peer(), ack.error);
  } else {
    std::lock_guard<std::mutex> lock((*shard)->mu);
    const int64_t dropped = (*shard)->host->dropped_runs();
    Status accepted =
        (*shard)->host->AcceptRun(push->step, push->partition, msg::TakeRun(&*push));
    if (!accepted.ok()) ack.error = accepted.message();
    ack.duplicate = (*shard)->host->dropped_runs() != dropped;
  }
  Status sent = SendMessage(*from, ack);
  if (!sent.ok()) log_->warn("cannot acknowledge a push to {}: {}", from->peer(), sent.ToString());
}

void WorkerService::Impl::ServePull(const std::shared_ptr<Connection>& from,
                                    const msg::PullParams& request) {
  const msg::PullParams* pull = &request;
  msg::ParamsReply reply;
  reply.request_id = pull->request_id;
  Result<ShardRef> shard = Shard(pull->job_id, pull->shard);
  if (!shard.ok()) {
    reply.error = shard.status().message();
  } else {
    std::lock_guard<std::mutex> lock((*shard)->mu);
    reply.step = (*shard)->host->last_reduced_step();
    if (reply.step == pull->step - 1) msg::SetRun((*shard)->host->shard().ParamsRun(), &reply);
  }
  failpoint::Coordinates at;
  at.worker = name_;
  at.shard = pull->shard;
  if (failpoint::Hit("pull-before-reply", at) == failpoint::Action::kDrop) return;
  Status sent = SendMessage(*from, reply);
  if (!sent.ok()) log_->warn("cannot answer a pull from {}: {}", from->peer(), sent.ToString());
}

Status WorkerService::Impl::Reduce(const msg::ReduceRound& round, const ShardRef& shard) {
  std::shared_ptr<WorkerJob> job = FindJob(round.job_id);
  RoundUpdate update;
  update.step = round.step;
  update.learning_rate = round.learning_rate;
  update.example_count = static_cast<double>(round.example_count);
  update.sorted_runs = job && job->spec.shuffle_mode == jobs::JobSpec::ShuffleMode::kSort;
  std::lock_guard<std::mutex> lock(shard->mu);
  if (shard->host->last_reduced_step() == round.step) return Status::Ok();  // a repeated request
  return shard->host->Reduce(update);
}

Status WorkerService::Impl::SaveShard(const msg::SaveShard& save, const ShardRef& shard,
                                     const WorkerJob& job, msg::ShardSaved* saved) {
  ShardFile file;
  {
    std::lock_guard<std::mutex> lock(shard->mu);
    const ReducerShard& reducer = shard->host->shard();
    file.keys = reducer.keys();  // ascending, as KeysOfShard gives them
    file.values = reducer.StateBlocks();
    file.num_slots = reducer.num_slots();
    file.step = shard->host->last_reduced_step();
  }
  file.epochs_done = save.epochs_done;
  file.shard = static_cast<int32_t>(save.shard);
  file.num_shards = job.spec.reducers;
  file.fingerprint = job.spec.Fingerprint();
  failpoint::Coordinates at;
  at.worker = name_;
  at.epoch = save.epochs_done;
  at.shard = save.shard;
  MRTRAIN_ASSIGN_OR_RETURN(
      ShardFileInfo info, WriteShardFile(save.path, file, [&at](const std::string& tmp) {
        switch (failpoint::Hit("checkpoint-mid-write", at)) {
          case failpoint::Action::kDrop:
            std::remove(tmp.c_str());  // the write is lost: the rename then fails
            break;
          case failpoint::Action::kCorrupt: {
            std::fstream f(tmp, std::ios::in | std::ios::out | std::ios::binary);
            f.seekg(0, std::ios::end);
            const std::streamoff middle = f.tellg() / 2;
            char c = 0;
            f.seekg(middle);
            f.get(c);
            f.seekp(middle);
            f.put(static_cast<char>(c ^ 0x5A));
            break;
          }
          default:
            break;
        }
      }));
  // Read back before it is reported: a file damaged on its way to the disk is written again
  // (the master retries the save) instead of committed into the checkpoint.
  MRTRAIN_RETURN_IF_ERROR(ReadShardFile(save.path, info).status());
  *saved = msg::ShardSaved{save.job_id, save.shard, save.epochs_done, info.bytes, info.crc32c};
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------

}  // namespace mrtrain::runtime
