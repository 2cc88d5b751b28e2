<?php

namespace App\Jobs;

use App\Release;
use Illuminate\Bus\Queueable;
use Illuminate\Contracts\Queue\ShouldQueue;
use Illuminate\Foundation\Bus\Dispatchable;
use Illuminate\Queue\InteractsWithQueue;
use Illuminate\Support\Facades\DB;

/** A queued job that takes a while, then records which release ran it. */
class RecordRun implements ShouldQueue
{
    use Dispatchable, InteractsWithQueue, Queueable;

    public $label;
    public $seconds;

    public function __construct(string $label, int $seconds = 0)
    {
        $this->label = $label;
        $this->seconds = $seconds;
    }

    public function handle()
    {
        $started = now();
        sleep($this->seconds);
        DB::table('panel_runs')->insert([
            'kind' => 'job',
            'label' => $this->label,
            'release' => Release::id(),
            'started_at' => $started,
            'finished_at' => now(),
        ]);
    }
}
