/* Prints any protobuf-c message as JSON, keys being the .proto field names.
 * Enums print as their value names, bytes as base64, 64-bit integers as
 * numbers. Scalars at their default are printed too, so scripts can rely on
 * every key being there; unset messages print as null. */
#ifndef CRM_PBJSON_H
#define CRM_PBJSON_H

#include <protobuf-c/protobuf-c.h>
#include <stdio.h>

void pbjson_print(FILE *out, const ProtobufCMessage *msg, int indent);
/* Writes `s` as a JSON string literal. */
void pbjson_string(FILE *out, const char *s);

#endif
