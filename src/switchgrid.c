/*-------------------------------------------------------------------------
 * switchgrid.c
 *	  Module entry point: defines the settings when the library is loaded.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"

#include "compat.h"
#include "guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

void
_PG_init(void)
{
	sg_define_gucs();
	MarkGUCPrefixReserved("switchgrid");
}
