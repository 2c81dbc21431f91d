// The one way drift's C++ includes PostgreSQL headers: standard headers first
// (port.h redefines printf and friends), then the server headers inside
// extern "C", postgres.h first.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstring>

extern "C" {
#include "postgres.h"

#include "access/generic_xlog.h"
#include "access/relscan.h"
#include "storage/bufmgr.h"
#include "storage/indexfsm.h"
#include "storage/lmgr.h"
#include "utils/rel.h"
}
