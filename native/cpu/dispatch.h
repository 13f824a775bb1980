// The CPU op table of the active ISA, generated from native/ops.def.
#pragma once
#include "../ops/all.h"

namespace rk::cpu {

struct OpTable {
#define RK_OP(name, P) void (*name)(const P&);
#include "../ops.def"
#undef RK_OP
};

const OpTable& ops();

}  // namespace rk::cpu
