#include "storage/read_txn.hpp"

#include <utility>

#include "storage/env.hpp"

namespace nudge::storage {

read_txn::read_txn(read_txn&& other) noexcept
    : env_(std::exchange(other.env_, nullptr)), txn_(std::exchange(other.txn_, nullptr)) {}

read_txn& read_txn::operator=(read_txn&& other) noexcept {
  if (this != &other) {
    reset();
    env_ = std::exchange(other.env_, nullptr);
    txn_ = std::exchange(other.txn_, nullptr);
  }
  return *this;
}

read_txn::~read_txn() { reset(); }

void read_txn::reset() noexcept {
  if (txn_ != nullptr)
    env_->leave_reader(std::exchange(txn_, nullptr));
  env_ = nullptr;
}

}  // namespace nudge::storage
