#include "storage/errc.hpp"

#include <string>

namespace nudge::storage {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "nudge.storage"; }

  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::ok:
        return "ok";
      case errc::map_full:
        return "storage map is full (map_size_max reached)";
      case errc::io_error:
        return "storage I/O error";
      case errc::corrupt:
        return "stored value is corrupt or of an unknown schema version";
      case errc::txn_failed:
        return "storage transaction failed";
      case errc::disk_full:
        return "no space left for the storage file (disk full)";
    }
    return "unknown storage error";
  }
};

}  // namespace

const std::error_category& storage_category() noexcept {
  static const category instance;
  return instance;
}

std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), storage_category()};
}

}  // namespace nudge::storage
