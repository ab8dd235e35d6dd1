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

void WorkerService::Impl::AcceptPush(const std::shared_ptr<Connection>& from, std::string payload,
                                     std::optional<uint32_t> payload_crc32c) {
  auto push = msg::DecodeAs<msg::PushRun>(payload);
  if (!push.ok()) {
    log_->error("bad PushRun from {}: {}; closing", from->peer(), push.status().ToString());
    return from->Close();
  }
  // Where TCP checked the frame, the floats are not read again to check their own checksum.
  const uint32_t values_crc32c = msg::ValuesCrc32c(payload, *push, payload_crc32c);
  payload = std::string();
  StorePush(from, std::move(*push), values_crc32c);
}

void WorkerService::Impl::AcceptPush(const std::shared_ptr<Connection>& from,
                                     std::shared_ptr<const msg::PushRun> handed) {
  // Its last owner takes the run out (it was made mutable, by EncodeGather's caller); a push
  // someone else still holds (kept output) is copied.
  msg::PushRun push =
      handed.use_count() == 1 ? std::move(const_cast<msg::PushRun&>(*handed)) : *handed;
  handed.reset();
  const uint32_t values_crc32c = Crc32c(push.values.data(), push.values.size() * sizeof(float));
  StorePush(from, std::move(push), values_crc32c);
}

void WorkerService::Impl::StorePush(const std::shared_ptr<Connection>& from, msg::PushRun push,
                                    uint32_t values_crc32c) {
  const msg::PushAck ack = StoreRun(std::move(push), values_crc32c, from->peer());
  Status sent = SendMessage(*from, ack);
  if (!sent.ok()) log_->warn("cannot acknowledge a push to {}: {}", from->peer(), sent.ToString());
}

void WorkerService::Impl::PushToOwnShard(GatherPayload payload) {
  // The map task's PushRun itself when nothing changed its bytes since it was encoded (a fault
  // test's `corrupt` leaves only bytes): its floats are checksummed here once, as a push handed
  // over in-process is, so a run changed after its checksum was taken is refused all the same.
  auto handed = std::static_pointer_cast<const msg::PushRun>(std::move(payload.message));
  msg::PushRun push;
  uint32_t values_crc32c = 0;
  if (handed) {
    payload = GatherPayload();  // its owner is the push too
    // Kept output (for replays) still holds it: then it is copied, else taken.
    push = handed.use_count() == 1 ? std::move(const_cast<msg::PushRun&>(*handed)) : *handed;
    handed.reset();
    values_crc32c = Crc32c(push.values.data(), push.values.size() * sizeof(float));
  } else {
    const std::string bytes = payload.Join();
    payload = GatherPayload();
    if (Status decoded = msg::Decode(bytes, &push); !decoded.ok()) {
      log_->error("a push to this worker's own shard does not decode: {}", decoded.ToString());
      return;  // no acknowledgement: the task's reply timeout fails it
    }
    values_crc32c = msg::ValuesCrc32c(bytes, push, std::nullopt);
  }
  OnPushAck(StoreRun(std::move(push), values_crc32c, "this worker"));
}

msg::PushAck WorkerService::Impl::StoreRun(msg::PushRun push, uint32_t values_crc32c,
                                           const std::string& from) {
  msg::PushAck ack{push.job_id, push.step, push.partition,      push.shard, push.attempt,
                   0,           "",        push.partition_count};
  Result<ShardRef> shard = Shard(push.job_id, push.shard);
  if (!shard.ok()) {
    ack.error = shard.status().message();
  } else if (values_crc32c != push.values_crc32c) {
    ack.error = "the run of partitions [" + std::to_string(push.partition) + ", +" +
                std::to_string(push.partition_count) + ") for step " + std::to_string(push.step) +
                " fails its checksum";
    log_->warn("refusing a push from {}: {}", from, ack.error);
  } else {
    MutexLock lock(&(*shard)->mu);
    const int64_t dropped = (*shard)->host->dropped_runs();
    Status accepted = (*shard)->host->AcceptRun(
        push.step, shuffle::TreeNode{push.partition, push.partition_count}, msg::TakeRun(&push));
    if (!accepted.ok()) ack.error = accepted.message();
    ack.duplicate = (*shard)->host->dropped_runs() != dropped;
  }
  return ack;
}

void WorkerService::Impl::AnswerPull(const msg::PullParams& pull, msg::ParamsReply* out,
                                     std::shared_ptr<const shuffle::Run>* params) {
  msg::ParamsReply& reply = *out;
  reply.request_id = pull.request_id;
  Result<ShardRef> shard = Shard(pull.job_id, pull.shard);
  if (!shard.ok()) {
    reply.error = shard.status().message();
  } else {
    MutexLock lock(&(*shard)->mu);
    reply.step = (*shard)->host->last_reduced_step();
    // A pull for a step not reduced yet is answered with the step the shard holds, which the
    // puller reports; one for a version no longer kept (training.staleness) fails.
    const int64_t wanted = pull.step - 1;
    if (wanted <= reply.step && pull.keys.empty()) {
      Result<std::shared_ptr<const shuffle::Run>> kept = (*shard)->host->ParamsAfter(wanted);
      if (kept.ok()) {
        *params = std::move(*kept);
        reply.step = wanted;
      } else {
        reply.error = kept.status().message();
      }
    } else if (wanted == reply.step) {
      // Rows of row-sparse tensors, as the task asked for them: only the latest version (job
      // setup refuses training.staleness for models with row-sparse tensors).
      std::vector<ParamKey> keys;
      keys.reserve(pull.keys.size());
      for (uint64_t packed : pull.keys) keys.push_back(ParamKey::FromPacked(packed));
      Result<shuffle::Run> rows = (*shard)->host->shard().RowsRun(keys);
      if (rows.ok()) {
        *params = std::make_shared<const shuffle::Run>(std::move(*rows));
      } else {
        reply.error = rows.status().message();
      }
    } else if (wanted < reply.step) {
      reply.error = "rows of row-sparse tensors are kept at the latest step only, " +
                    std::to_string(reply.step) + "; asked for the step after update " +
                    std::to_string(wanted);
    }
  }
  // No parameters (an error, or a step the shard has not reached: the reply's step says so).
  if (!*params) *params = std::make_shared<const shuffle::Run>();
}

bool WorkerService::Impl::DropPullReply(int64_t shard) const {
  failpoint::Coordinates at;
  at.worker = name_;
  at.shard = shard;
  return failpoint::Hit("pull-before-reply", at) == failpoint::Action::kDrop;
}

Result<msg::ParamsReply> WorkerService::Impl::PullOwnShard(uint64_t job_id, int64_t shard,
                                                           int64_t updates) {
  msg::PullParams pull;
  pull.job_id = job_id;
  pull.shard = shard;
  pull.step = updates + 1;
  msg::ParamsReply reply;
  std::shared_ptr<const shuffle::Run> params;
  AnswerPull(pull, &reply, &params);
  if (DropPullReply(shard)) {
    // As a dropped reply over the network: nothing comes within the reply timeout.
    std::this_thread::sleep_for(options_.reply_timeout);
    return DeadlineExceededError("no parameters from this worker's own reducer shard " +
                                 std::to_string(shard) + " within " +
                                 std::to_string(options_.reply_timeout.count()) + " ms");
  }
  if (reply.error.empty()) msg::SetRun(*params, &reply);  // a copy: the version is shared
  return reply;
}

void WorkerService::Impl::ServePull(const std::shared_ptr<Connection>& from,
                                    const msg::PullParams& pull) {
  msg::ParamsReply reply;
  std::shared_ptr<const shuffle::Run> params;
  AnswerPull(pull, &reply, &params);
  if (DropPullReply(pull.shard)) return;
  auto error_reply = [&] {
    Result<std::string> bytes = msg::Encode(reply);
    return SendPullReply(from, reply,
                         bytes.ok() ? Result<GatherPayload>(GatherPayload(std::move(*bytes)))
                                    : Result<GatherPayload>(bytes.status()));
  };
  if (!reply.error.empty()) {
    error_reply();
    return;
  }
  // Part by part, each encoded just before it is sent, the floats written from the copy of the
  // parameters taken above: a large shard never has more than one part's head encoded at once
  // (Send waits while the connection is over its budget).
  const std::vector<size_t> bounds = msg::SplitParamsRun(*params, options_.reply_part_values);
  if (bounds.size() - 1 > kMaxReplyParts) {
    reply.error = "reducer shard " + std::to_string(pull.shard) + " has " +
                  std::to_string(params->values.size()) + " floats: over " +
                  std::to_string(kMaxReplyParts) + " parts of " +
                  std::to_string(options_.reply_part_values);
    error_reply();
    return;
  }
  reply.parts = static_cast<uint32_t>(bounds.size() - 1);
  for (uint32_t p = 0; p < reply.parts; ++p) {
    reply.part = p;
    if (!SendPullReply(from, reply, msg::EncodeReplyPart(reply, params, bounds[p], bounds[p + 1])))
      return;
  }
}

bool WorkerService::Impl::SendPullReply(const std::shared_ptr<Connection>& to,
                                        const msg::ParamsReply& reply,
                                        Result<GatherPayload> payload) {
  Status sent = payload.ok() ? to->SendGather(MessageType::kParamsReply, std::move(*payload))
                             : payload.status();
  if (sent.ok()) return true;
  log_->error("cannot answer a pull from {}: {}", to->peer(), sent.ToString());
  if (sent.code() == StatusCode::kUnavailable) return false;  // the puller is gone
  // Too large to encode or send: the puller fails now, with the cause, instead of waiting for
  // its reply timeout.
  msg::ParamsReply error;
  error.request_id = reply.request_id;
  error.step = reply.step;
  error.error = "the shard host could not send the parameters: " + sent.message();
  Status told = SendMessage(*to, error);
  if (!told.ok()) log_->error("cannot tell {} why: {}", to->peer(), told.ToString());
  return false;
}

Status WorkerService::Impl::Reduce(const msg::ReduceRound& round, const ShardRef& shard) {
  std::shared_ptr<WorkerJob> job = FindJob(round.job_id);
  RoundUpdate update;
  update.step = round.step;
  update.learning_rate = round.learning_rate;
  update.example_count = static_cast<double>(round.example_count);
  update.sorted_runs = job && job->spec.shuffle_mode == jobs::JobSpec::ShuffleMode::kSort;
  MutexLock lock(&shard->mu);
  if (shard->host->last_reduced_step() == round.step) return Status::Ok();  // a repeated request
  return shard->host->Reduce(update);
}

Status WorkerService::Impl::SaveShard(const msg::SaveShard& save, const ShardRef& shard,
                                      const WorkerJob& job, msg::ShardSaved* saved) {
  ShardFile file;
  {
    MutexLock lock(&shard->mu);
    const ReducerShard& reducer = shard->host->shard();
    file.keys = reducer.StateKeys();  // ascending: the dense blocks and the rows held
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
