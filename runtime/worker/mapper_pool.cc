#include "runtime/worker/mapper_pool.h"

#include "engine/base/check.h"

namespace mrtrain::runtime {

MapperPool::MapperPool(std::vector<std::unique_ptr<api::Mapper>> mappers)
    : owned_(std::move(mappers)) {
  for (auto& m : owned_) free_.push_back(m.get());
}

MapperPool::Lease MapperPool::Borrow() {
  std::lock_guard<std::mutex> lock(mu_);
  MRTRAIN_CHECK(!free_.empty());  // more borrowers than threads would share a mapper
  api::Mapper* m = free_.back();
  free_.pop_back();
  return Lease(this, m);
}

void MapperPool::Return(api::Mapper* mapper) {
  std::lock_guard<std::mutex> lock(mu_);
  free_.push_back(mapper);
}

}  // namespace mrtrain::runtime
