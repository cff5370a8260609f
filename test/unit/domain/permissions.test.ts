import { describe, expect, it } from "vitest";
import { permissionsOfRoles } from "../../../src/domain/permissions.js";

describe(permissionsOfRoles.name, () => {
  it("grants the built-in roles' permissions, in the contract's order", () => {
    expect(permissionsOfRoles(["contributor", "viewer"])).toEqual(["READ", "WRITE"]);
    expect(permissionsOfRoles(["admin"])).toEqual(["READ", "WRITE", "MANAGE_PARTICIPANTS", "DELETE", "ADMIN"]);
    expect(permissionsOfRoles([])).toEqual([]);
  });

  // Found by the fuzz suite (seed -790438314): AddParticipant with the role "constructor" answered
  // INTERNAL ("function is not iterable"), the role looked up on an object's prototype.
  it("grants READ for any other name, Object.prototype's names included", () => {
    for (const role of ["constructor", "__proto__", "toString", "hasOwnProperty", "planner"]) {
      expect(permissionsOfRoles([role])).toEqual(["READ"]);
    }
  });
});
