// The report's JSON Schema (schema/report.schema.json), compiled once; what diff and report read is checked against it.
import { readFileSync } from "node:fs";
import { Ajv, type ErrorObject } from "ajv";
import { REPORT_VERSION, type Report } from "../runner/report.js";

/** Where the schema lives in the package. */
export const SCHEMA_PATH = new URL("../../schema/report.schema.json", import.meta.url);

let validator: ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

function compiled() {
  validator ??= new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true }).compile(
    JSON.parse(readFileSync(SCHEMA_PATH, "utf8")),
  );
  return validator;
}

/** A file that is not a readable sockprobe report, with what is wrong with it. */
export class ReportError extends Error {}
Object.defineProperty(ReportError.prototype, "name", { value: "ReportError" });

/** The schema's complaints about `data`, as short lines; empty when it is a valid report. */
export function validateReport(data: unknown): string[] {
  const v = compiled();
  if (v(data)) return [];
  return (v.errors ?? []).slice(0, 10).map((e) => `${e.instancePath || "(top)"} ${e.message ?? "is invalid"}`);
}

/** Reads and checks a report file; every failure is a ReportError naming the file and the fault. */
export function readReport(file: string): Report {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new ReportError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ReportError(`${file} is not JSON: ${(e as Error).message}`);
  }
  const d = data as { format?: unknown; version?: unknown };
  if (d?.format !== "sockprobe-report")
    throw new ReportError(`${file} is not a sockprobe report (no "format": "sockprobe-report")`);
  if (d.version !== REPORT_VERSION)
    throw new ReportError(
      `${file} is a version ${String(d.version)} report; this sockprobe reads version ${REPORT_VERSION}`,
    );
  const problems = validateReport(data);
  if (problems.length) throw new ReportError(`${file} does not match the report schema: ${problems.join("; ")}`);
  return data as Report;
}
