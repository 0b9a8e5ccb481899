// Route type codes (RTN_*) and FIB value kinds the lookup nodes use, taken from shared-mem/layout.ts
// (plain data exports: no re-export getters on the hot path), plus the two RTN_* codes layout.ts
// does not name (ROUTE_TYPES order).

import * as L from '../shared-mem/layout';

export const FIB_GROUP = L.FIB_GROUP;
export const FIB_INDEX_MASK = L.FIB_INDEX_MASK;
export const RTN_UNICAST = L.RTN_UNICAST;
export const RTN_LOCAL = L.RTN_LOCAL;
export const RTN_BROADCAST = L.RTN_BROADCAST;
export const RTN_ANYCAST = L.ROUTE_TYPES.indexOf('anycast');
export const RTN_MULTICAST = L.ROUTE_TYPES.indexOf('multicast');
export const RTN_BLACKHOLE = L.RTN_BLACKHOLE;
export const RTN_UNREACHABLE = L.RTN_UNREACHABLE;
export const RTN_PROHIBIT = L.RTN_PROHIBIT;
export const RTN_THROW = L.RTN_THROW;
