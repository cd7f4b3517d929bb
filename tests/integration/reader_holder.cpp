// A process that holds an LMDB read transaction on DIR until it is killed, for the
// stale-reader test: `nudge_test_reader DIR` opens the environment read-only, begins a
// read transaction, reads the main table's stats, prints "ready" and sleeps (at most
// 60 s, so that it stops by itself when nobody kills it). Exit 1 when it cannot read.
#include <lmdb.h>
#include <unistd.h>

#include <cstdio>

int main(int argc, char** argv) {
  if (argc != 2)
    return 2;
  MDB_env* env = nullptr;
  MDB_txn* txn = nullptr;
  MDB_stat st{};
  if (mdb_env_create(&env) != 0 || mdb_env_open(env, argv[1], MDB_RDONLY, 0600) != 0 ||
      mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) != 0 || mdb_stat(txn, 1, &st) != 0)
    return 1;
  std::printf("ready %d\n", static_cast<int>(::getpid()));
  std::fflush(stdout);
  ::sleep(60);
  mdb_txn_abort(txn);
  mdb_env_close(env);
  return 0;
}
