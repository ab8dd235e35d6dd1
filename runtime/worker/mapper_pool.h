#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "engine/api/mapper.h"

namespace mrtrain::runtime {

// Mappers serve one task at a time (they keep scratch buffers), so a pool of tasks running on
// N threads borrows from N mappers. Thread-safe. REQUIRES: never more concurrent borrowers
// than mappers (one per pool thread).
class MapperPool {
 public:
  explicit MapperPool(std::vector<std::unique_ptr<api::Mapper>> mappers);

  // Returns the mapper to the pool when it goes out of scope.
  class Lease {
   public:
    Lease(MapperPool* pool, api::Mapper* mapper) : pool_(pool), mapper_(mapper) {}
    ~Lease() { pool_->Return(mapper_); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    api::Mapper& operator*() const { return *mapper_; }

   private:
    MapperPool* pool_;
    api::Mapper* mapper_;
  };

  Lease Borrow();
  size_t size() const { return owned_.size(); }
  // Any one mapper, for calls made while no task runs (e.g. NumOutputs).
  api::Mapper& front() { return *owned_.front(); }

 private:
  void Return(api::Mapper* mapper);

  std::vector<std::unique_ptr<api::Mapper>> owned_;
  std::mutex mu_;
  std::vector<api::Mapper*> free_;  // guarded by mu_
};

}  // namespace mrtrain::runtime
