/**
 * Running balances: the one place that decides whether a transfer can be paid. The builder,
 * block validation and full-ledger verification all apply transactions through here, so a
 * block that spends the same funds twice fails the same way everywhere.
 */
import { GENESIS, MAX_SUPPLY } from "./params.ts";
import type { Tx } from "./transaction.ts";

/** Balances by address. An address missing from the map has the balance given by `base`. */
export class RunningBalances {
  /** Balances changed by the transfers applied so far, by address. */
  readonly changed = new Map<string, number>();
  /** Starts from `base`, which gives an address's balance before any transfer applied here. */
  constructor(private readonly base: (address: string) => number) {}

  /** Current balance of an address, including transfers applied so far. */
  get(address: string): number {
    return this.changed.get(address) ?? this.base(address);
  }

  /**
   * Applies a transfer if it can be paid, else returns why not and changes nothing. GENESIS
   * pays anything, up to the total supply cap (its balance is minus the supply).
   */
  apply(tx: Tx): string | null {
    const from = this.get(tx.sender);
    if (tx.sender === GENESIS) {
      if (-from + tx.amount > MAX_SUPPLY) {
        return `minting ${tx.amount} would exceed the total supply cap of ${MAX_SUPPLY}`;
      }
    } else if (from < tx.amount) {
      return `not enough balance: ${tx.sender} has ${from}, needs ${tx.amount}`;
    }
    this.changed.set(tx.sender, from - tx.amount);
    this.changed.set(tx.receiver, this.get(tx.receiver) + tx.amount);
    return null;
  }
}
